"""Solver choice benchmark: what ``solver="auto"`` picks, against each of our smooth solvers.

    python benchmarks/choice.py [--problems SUBSTRING,...] [--repeat 3] [--threads 1]

For each problem, with C=1 and the L2 penalty (small problems on both sides of the
``newton-cholesky`` threshold ``K * p <= 100``, then those of ``problems.PROBLEMS``):

1. each of our smooth solvers (``lbfgs``, ``newton-cg``, and ``newton-cholesky`` where
   ``K * p <= CHOLESKY_MAX_PARAMS``: it forms the full Hessian) runs at its default
   settings, which end at the optimum; f* is the best objective any of them reaches;
2. the runs are re-timed to a median of ``--repeat`` or more runs (more for short fits,
   until each solver has run ``MIN_TIMED_SECONDS``), the solvers' runs alternating;
3. the row says which solver ``auto`` picks and its time over the fastest one's.

Everything runs in one process; the table goes to the ``choice`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    alternating_times,
    benchmark_arguments,
    design_objective,
    limit_threads,
    machine_description,
    timed,
    write_section,
)
from problems import PROBLEMS, DataUnavailable  # noqa: E402

MATCH = 1e-7
CHOLESKY_MAX_PARAMS = 700
SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")
MIN_TIMED_SECONDS = 0.5  # fast fits are repeated until this much time has been measured
MAX_ROUNDS = 200


def _classification(n_samples, n_features, n_classes, seed=0):
    def load():
        from sklearn.datasets import make_classification

        return make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=max(2, n_features // 2),
            n_redundant=n_features // 4,
            n_classes=n_classes,
            n_clusters_per_class=1,
            random_state=seed,
        )

    return load


def _standardised(loader_name):
    def load():
        import sklearn.datasets
        from sklearn.preprocessing import StandardScaler

        X, y = getattr(sklearn.datasets, loader_name)(return_X_y=True)
        return StandardScaler().fit_transform(X), y

    return load


# small problems around the K * p <= 100 threshold (p = d + 1)
SMALL_PROBLEMS = {
    "demo 300 x 2, K=3 (K*p=9)": _classification(300, 2, 3, seed=42),  # `softmaxreg demo`
    "iris 150 x 4, K=3 (K*p=15)": _standardised("load_iris"),
    "wine 178 x 13, K=3 (K*p=42)": _standardised("load_wine"),
    "breast cancer 569 x 30, K=2 (K*p=62)": _standardised("load_breast_cancer"),
    "synthetic 500 x 14, K=6 (K*p=90)": _classification(500, 14, 6),
    "synthetic 2k x 9, K=3 (K*p=30)": _classification(2_000, 9, 3),
    "synthetic 2k x 14, K=6 (K*p=90)": _classification(2_000, 14, 6),
    "synthetic 20k x 10, K=8 (K*p=88)": _classification(20_000, 10, 8),
    "synthetic 20k x 20, K=5 (K*p=105)": _classification(20_000, 20, 5),
    "synthetic 20k x 40, K=5 (K*p=205)": _classification(20_000, 40, 5),
}


def fit(X, y, **params):
    from softmaxreg import SoftmaxRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may run out of iterations
        return SoftmaxRegression(C=1.0, max_iter=10_000, **params).fit(X, y)


def run_problem(name, loader, repeat, log):
    from softmaxreg._solvers._auto import choose_solver

    X, y = loader()
    classes, y_codes = np.unique(y, return_inverse=True)
    n, d = X.shape
    K = len(classes)
    n_params = K * (d + 1)
    auto = choose_solver(X, K, "l2")
    kind = "sparse" if sp.issparse(X) else "dense"
    log(f"== {name}: n={n}, d={d}, K={K}, K*p={n_params}, {kind} {X.dtype}; auto: {auto}")
    matched, calls, first, values = {}, {}, {}, {}
    for solver in SOLVERS:
        if solver == "newton-cholesky" and n_params > CHOLESKY_MAX_PARAMS:
            continue
        seconds, model = timed(lambda s=solver: fit(X, y, solver=s))
        values[solver] = design_objective(X, y_codes, model.coef_, model.intercept_)
        log(f"   {solver:16s} {seconds:8.3f}s f={values[solver]:.12g}")
        calls[solver] = lambda s=solver: fit(X, y, solver=s)
        first[solver] = [seconds]
    best = min(values.values())
    for solver, value in values.items():
        matched[solver] = {"gap": (value - best) / abs(best)}
    # the matched runs of all solvers alternate (see _report.alternating_times)
    times, _ = alternating_times(calls, repeat, MIN_TIMED_SECONDS, MAX_ROUNDS, first)
    for solver, solver_times in times.items():
        matched[solver]["seconds"] = float(np.median(solver_times))
        matched[solver]["runs"] = len(solver_times)
    for solver in matched:
        log(f"   {solver}: {matched[solver]}")
    timed_solvers = {s: m["seconds"] for s, m in matched.items() if m["gap"] <= MATCH}
    fastest = min(timed_solvers, key=timed_solvers.get) if timed_solvers else None
    return {
        "name": name,
        "kind": f"{kind}, {X.dtype}",
        "auto": auto,
        "matched": matched,
        "fastest": fastest,
        "auto_ratio": (
            timed_solvers[auto] / timed_solvers[fastest]
            if fastest is not None and auto in timed_solvers
            else None
        ),
    }


def _cell(result, solver) -> str:
    entry = result["matched"].get(solver)
    if entry is None:
        return "-"
    text = f"{_seconds(entry['seconds'])}"
    if entry["gap"] > MATCH:
        text += f" (gap {entry['gap']:.0e})"
    return f"**{text}**" if solver == result["fastest"] else text


def _seconds(value: float) -> str:
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(results) -> str:
    lines = [
        "| problem | data | auto picks | lbfgs | newton-cg | newton-cholesky | auto / fastest |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        ratio = "-" if result["auto_ratio"] is None else f"{result['auto_ratio']:.2f}"
        lines.append(
            f"| {result['name']} | {result['kind']} | {result['auto']} | "
            + " | ".join(_cell(result, solver) for solver in SOLVERS)
            + f" | {ratio} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = benchmark_arguments(__doc__).parse_args(argv)
    limit_threads(args.threads)
    wanted = [item for item in args.problems.split(",") if item]
    results, missing = [], []
    for name, loader in {**SMALL_PROBLEMS, **PROBLEMS}.items():
        if wanted and not any(item in name for item in wanted):
            continue
        try:
            results.append(run_problem(name, loader, args.repeat, lambda m: print(m, flush=True)))
        except DataUnavailable as exc:
            print(f"skipping {name}: {exc}", flush=True)
            missing.append(f"- {name}: not run ({exc})")
    body = "\n".join(
        [
            '## Solver choice: what `solver="auto"` picks, against each of our solvers',
            "",
            f"Machine: {machine_description()}"
            + (f", limited to {args.threads} thread(s)." if args.threads else "."),
            "",
            "C=1, L2 (`python benchmarks/choice.py`). Each solver at its default settings, "
            f"median of {args.repeat} or more runs (until each has run "
            f"{MIN_TIMED_SECONDS:g} s), the solvers alternating; the fastest solver of "
            f"those within {MATCH:.0e} relative of f* (the best any reached) in bold, a "
            "larger gap in brackets. "
            f"newton-cholesky runs where K*p <= {CHOLESKY_MAX_PARAMS} (p = d + 1). "
            "Auto / fastest = auto's matched time over the fastest one's (1.00: auto picked it).",
            "",
            table(results),
            *(["", *missing] if missing else []),
        ]
    )
    print(body)
    if not args.no_write:
        write_section("choice", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
