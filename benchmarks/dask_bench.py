"""Dask: time per loss+gradient pass as n grows, on a two-worker LocalCluster.

d = 20, K = 5, float64, data generated on the workers with ``dask.array.random`` in chunks of
250,000 rows (never on the client); the objective is built once (blocks persisted as futures)
and ``loss_gradient`` is timed (median of 5 after one warm-up), followed by one Hessian-vector
product. Peak memory per worker is the workers' peak resident set size (``ru_maxrss``).

    python benchmarks/dask_bench.py [--max-n 10000000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_description, write_section  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import dask.array as da
    from distributed import Client, LocalCluster

    from softmaxreg import SoftmaxRegression
    from softmaxreg._dask import prepare_fit

    d, K, chunk = 20, 5, 250_000
    sizes = [n for n in (100_000, 1_000_000, 10_000_000) if n <= args.max_n]
    rows = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for n in sizes:
            rng = da.random.default_rng(0)
            X = rng.standard_normal((n, d), chunks=(min(chunk, n), d))
            W = np.random.default_rng(1).normal(size=(d, K))
            y = da.argmax(X @ W + rng.gumbel(size=(n, K), chunks=(min(chunk, n), K)), axis=1)
            objective, _, _ = prepare_fit(SoftmaxRegression(), X, y, None)
            params = objective.initial_params()
            objective.loss_gradient(params)  # warm-up: materialises the blocks
            times = []
            for _ in range(5):
                start = time.perf_counter()
                objective.loss_gradient(params)
                times.append(time.perf_counter() - start)
            _, gradient, hessp = objective.loss_gradient_hessp(params)
            start = time.perf_counter()
            hessp(gradient)
            hvp_time = time.perf_counter() - start
            peaks = client.run(_peak_rss_mib)
            objective.release()
            del hessp
            median = statistics.median(times)
            rows.append((n, n // min(chunk, n), median, hvp_time, max(peaks.values())))
            print(
                f"n={n:>10,}  pass {median:.3f} s  hvp {hvp_time:.3f} s  "
                f"peak worker RSS {max(peaks.values()):.0f} MiB",
                flush=True,
            )
    table = [
        "| n | blocks | loss+gradient pass (s) | s per 1e6 rows | HVP (s) "
        "| peak RSS per worker (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for n, blocks, median, hvp, peak in rows:
        table.append(
            f"| {n:,} | {blocks} | {median:.3f} | {median / n * 1e6:.3f} | {hvp:.3f} | {peak:.0f} |"
        )
    skipped = [n for n in (100_000, 1_000_000, 10_000_000) if n > args.max_n]
    note = f"Not run: n = {', '.join(f'{n:,}' for n in skipped)} (--max-n)." if skipped else ""
    body = "\n".join(
        [
            "## Dask",
            "",
            f"LocalCluster(n_workers=2, threads_per_worker=1, processes=True); d = {d}, K = {K}, "
            f"float64, chunks of {chunk:,} rows generated on the workers; median of 5 "
            "`DaskSoftmaxObjective.loss_gradient` passes (`python benchmarks/dask_bench.py`). "
            "Only the parameters go out and [K, p] partial sums come back (tree of 8).",
            "",
            *table,
            "",
            note,
            f"Machine: {machine_description()}.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("dask", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
