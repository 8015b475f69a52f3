"""Shared pieces of the benchmark scripts: machine description and RESULTS.md sections."""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_description() -> str:
    """CPU model, core count, memory, Python and library versions, BLAS."""
    import numpy
    import scipy
    import sklearn

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        infos = [
            f"{info['internal_api']} {info.get('version') or ''} ({info['num_threads']} threads)"
            for info in threadpool_info()
            if info["user_api"] == "blas"
        ]
        blas = "; BLAS: " + ", ".join(sorted(set(infos)))
    except ImportError:
        pass
    from softmaxreg import __version__

    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, scipy {scipy.__version__}, scikit-learn "
        f"{sklearn.__version__}, softmaxreg {__version__}{blas}"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- name:start -->`` and
    ``<!-- name:end -->`` in RESULTS.md, leaving the other sections as they are."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before = text[: text.index(start)]
        after = text[text.index(end) + len(end) :]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def benchmark_arguments(doc: str) -> argparse.ArgumentParser:
    """The options every solver benchmark script takes (``doc``'s first line describes it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--problems", default="", help="comma-separated name substrings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS/OpenMP threads for every library"
    )
    return parser


def limit_threads(threads: int | None) -> None:
    """Limit BLAS/OpenMP threads for the rest of the process (None: leave them).

    threadpoolctl limits only the libraries loaded when it is called, so every library that
    brings a BLAS is imported first: SciPy's own OpenBLAS (``scipy.linalg``: our ``axpy`` and
    Cholesky solves, scikit-learn's newton-cholesky solves) loads after NumPy's, and until
    session 10 it ran with all cores in `run.py` and `choice.py` while their headers said one
    thread. Raises if any BLAS still runs more threads than asked.
    """
    if threads:
        import scipy.linalg  # noqa: F401
        import sklearn.linear_model  # noqa: F401
        from threadpoolctl import threadpool_info, threadpool_limits

        import softmaxreg  # noqa: F401

        threadpool_limits(threads)
        running = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
        if running != {threads}:
            raise RuntimeError(f"BLAS threads {running} despite the limit {threads}")


def design_objective(X, y_codes, coef, intercept, C=1.0) -> float:
    """DESIGN.md's f = C * sum_i -log P(y_i | x_i) + 0.5 ||W||^2, in float64 (dense or sparse
    X), whoever fitted ``coef`` [K, d] and ``intercept`` [K]."""
    import numpy as np
    from scipy.special import log_softmax

    X = X.astype(np.float64)
    scores = np.asarray(X @ coef.astype(np.float64).T) + intercept.astype(np.float64)
    log_proba = log_softmax(scores, axis=1)
    return float(
        -C * log_proba[np.arange(len(y_codes)), y_codes].sum()
        + 0.5 * np.sum(coef.astype(np.float64) ** 2)
    )


def timed(call):
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def alternating_times(calls, repeat: int, min_seconds: float, max_rounds: int, first=None):
    """Time several calls in turn, round after round, so that all see the same slow and fast
    spells of a shared machine (its times move by 20-40% over seconds).

    Rounds go on until every call has run at least ``repeat`` times and for ``min_seconds``
    in all (short fits get more runs), or for ``max_rounds`` rounds.

    Parameters
    ----------
    calls : dict of name -> callable
    repeat, min_seconds, max_rounds : see above
    first : dict of name -> list of float, optional
        Times already measured, counted with the new ones.

    Returns
    -------
    times : dict of name -> list of float
    results : dict of name -> the last result of each call (None if it never ran)
    """
    times = {name: list((first or {}).get(name, [])) for name in calls}
    results = dict.fromkeys(calls)
    for _ in range(max_rounds):
        if all(len(t) >= repeat and sum(t) >= min_seconds for t in times.values()):
            break
        for name, call in calls.items():
            seconds, results[name] = timed(call)
            times[name].append(seconds)
    return times, results

