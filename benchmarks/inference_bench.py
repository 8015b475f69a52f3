"""Time the covariance of ``SoftmaxRegression.inference`` for n = 50,000, d = 50, K = 10.

Measured, median of 3 runs each, on one fitted unpenalised model:

- the observed-information covariance: the full Hessian assembled by ``softmaxreg._loss.hessian``
  (BLAS-3 products over row chunks) plus the Cholesky inversion of its non-reference block;
- the whole ``model.inference(X, y)`` call (adds the design-rank check, the separation screen,
  the log-likelihoods and the pandas tables);
- side by side in the same process, statsmodels' ``MNLogit.hessian`` (one product per pair of
  classes) plus ``numpy.linalg.inv``, the route of ``MNLogit(...).fit().cov_params()``.

A second table times a one-hot table like covertype (n = 50,000: 10 standard normal columns
and two dummy-coded categoricals of 4 and 46 levels, 58 columns, K = 7, labels drawn from a
softmax model so that the maximum-likelihood estimate exists): the default fit plus
``inference`` (which takes the Newton steps the default fit leaves out, if any) against
statsmodels' ``MNLogit(...).fit(method="newton")`` plus its standard errors, one run each,
with the largest relative difference of the standard errors.

Run ``python benchmarks/inference_bench.py``; it prints the table and writes it into the
"## Inference" section of ``benchmarks/RESULTS.md`` between the ``inference`` markers, leaving
the rest of that file alone.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.linalg
import statsmodels.api as sm
from threadpoolctl import threadpool_info, threadpool_limits

from softmaxreg import SoftmaxRegression, _loss

N_SAMPLES, N_FEATURES, N_CLASSES = 50_000, 50, 10
REPEATS = 3
RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- inference:start -->", "<!-- inference:end -->"


def make_data(seed: int = 0):
    """Standard normal features, labels drawn from a softmax model with moderate signal."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    coef = rng.normal(scale=0.3, size=(N_CLASSES, N_FEATURES))
    proba = _loss.softmax(X @ coef.T)
    y = (proba.cumsum(axis=1) > rng.random((N_SAMPLES, 1))).argmax(axis=1)
    return X, y


def make_one_hot_data(seed: int = 0, n: int = 50_000, n_classes: int = 7):
    """Covertype-like: 10 numeric columns and dummies of 4- and 46-level categoricals."""
    rng = np.random.default_rng(seed)
    area = rng.integers(0, 4, n)
    soil = rng.integers(0, 46, n)
    X = np.hstack([rng.standard_normal((n, 10)), np.eye(4)[area][:, 1:], np.eye(46)[soil][:, 1:]])
    coef = rng.normal(scale=0.4, size=(n_classes, X.shape[1]))
    proba = _loss.softmax(X @ coef.T)
    y = (proba.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return X, y


def time_one_hot() -> tuple[list[tuple[str, float]], float, int]:
    """Seconds of each route on the one-hot table (one BLAS thread), the largest relative
    difference of the standard errors, and the Newton steps inference took."""
    X, y = make_one_hot_data()
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        model = SoftmaxRegression(penalty=None).fit(X, y)
        fitted = time.perf_counter()
        result = model.inference(X, y)
        done = time.perf_counter()
        reference = sm.MNLogit(y, sm.add_constant(X, prepend=True)).fit(method="newton", disp=0)
        bse = reference.bse
        reference_done = time.perf_counter()
    rows = [
        ("softmaxreg: default fit", fitted - start),
        ("softmaxreg: `inference(X, y)` (Newton steps to the optimum + covariance)",
         done - fitted),
        ("softmaxreg: fit + inference", done - start),
        ("statsmodels: `MNLogit.fit(method=\"newton\")` + `bse`", reference_done - done),
    ]
    difference = float(np.max(np.abs(result.bse.to_numpy() / bse - 1)))
    return rows, difference, result.newton_steps


def median_seconds(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def covariance_softmaxreg(X, y, theta) -> np.ndarray:
    """The work of ``inference`` for the covariance: Hessian assembly, then Cholesky inverse."""
    K, p = theta.shape
    hessian = _loss.hessian(X, y, theta, None, True)
    information = hessian[p:, p:]  # reference class 0 left out
    factor = scipy.linalg.cho_factor(information, check_finite=False)
    return scipy.linalg.cho_solve(factor, np.eye(information.shape[0]), check_finite=False)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = re.findall(r"model name\s*:\s*(.+)", handle.read())
        if names:
            cpu = names[0].strip()
    except OSError:
        pass
    blas = ", ".join(
        f"{info.get('internal_api')} {info.get('version')} ({info.get('num_threads')} threads)"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    )
    return f"{cpu}, {os.cpu_count()} logical cores; BLAS: {blas}"


def time_steps(X, y, model, theta, sm_model, sm_params) -> list[float]:
    """Median seconds of each step, in the order of ``STEPS``."""
    return [
        median_seconds(lambda: _loss.hessian(X, y, theta, None, True)),
        median_seconds(lambda: covariance_softmaxreg(X, y, theta)),
        median_seconds(lambda: model.inference(X, y)),
        median_seconds(lambda: np.linalg.inv(-sm_model.hessian(sm_params.ravel(order="F")))),
    ]


STEPS = [
    "softmaxreg: Hessian assembly (`_loss.hessian`, all K*p rows)",
    "softmaxreg: covariance (Hessian + Cholesky inverse)",
    "softmaxreg: whole `inference(X, y)`",
    "statsmodels: `MNLogit.hessian` + `inv` (same covariance)",
]


def main() -> None:
    X, y = make_data()
    with threadpool_limits(limits=1):  # the fit is not timed; one thread avoids contention
        model = SoftmaxRegression(penalty=None, tol=1e-8, max_iter=2000).fit(X, y)
    theta = np.column_stack([model.coef_, model.intercept_])
    sm_model = sm.MNLogit(y, sm.add_constant(X, prepend=True))
    # statsmodels' parameters: rows [const, x...], columns the non-reference classes
    sm_params = (theta[1:] - theta[0])[:, [-1, *range(N_FEATURES)]].T

    # BLAS threads: one, then all cores (on a shared machine the second can be slower).
    with threadpool_limits(limits=1):
        single = time_steps(X, y, model, theta, sm_model, sm_params)
    cores = os.cpu_count() or 1
    with threadpool_limits(limits=cores):
        parallel = time_steps(X, y, model, theta, sm_model, sm_params)

    # Both routes give the same covariance (a check of the benchmark, not a test).
    ours = model.inference(X, y).cov.to_numpy()
    theirs = np.linalg.inv(-sm_model.hessian(sm_params.ravel(order="F")))
    agreement = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))

    one_hot_rows, one_hot_difference, newton_steps = time_one_hot()
    one_hot_table = "\n".join(f"| {name} | {seconds:.2f} |" for name, seconds in one_hot_rows)

    size = (N_CLASSES - 1) * (N_FEATURES + 1)
    table = "\n".join(
        f"| {name} | {one:.3f} | {many:.3f} |"
        for name, one, many in zip(STEPS, single, parallel, strict=True)
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    section = f"""{START}
## Inference

Covariance of the reference-form parameters for n = {N_SAMPLES:,}, d = {N_FEATURES},
K = {N_CLASSES} ({size} x {size} information matrix), unpenalised fit; seconds, median of
{REPEATS} runs, one process (`python benchmarks/inference_bench.py`).

| step | 1 BLAS thread | {cores} BLAS threads |
|---|---|---|
{table}

Largest difference between the two covariances, relative to the largest entry: {agreement:.1e}.

One-hot table like covertype (n = 50,000, 58 columns: 10 numeric, dummies of 4- and
46-level categoricals; K = 7), unpenalised, 1 BLAS thread, seconds, one run each:

| step | seconds |
|---|---|
{one_hot_table}

inference took {newton_steps} Newton step(s) from the default fit; largest relative difference
of the standard errors from statsmodels': {one_hot_difference:.1e}.

Machine: {machine_description()}; load average at the end {load}.
Versions: Python {platform.python_version()}, numpy {np.__version__}, scipy
{scipy.__version__}, statsmodels {version("statsmodels")}, softmaxreg {version("softmaxreg")}.
{END}"""
    print(section)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
