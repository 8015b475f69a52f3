"""GPU fit (PyTorch CUDA tensors through the array API path) against scikit-learn on the CPUs.

Problem: 1,000,000 x 256 float32 synthetic features, K = 100 classes drawn from a softmax model,
generated on the device; C = 1, L2. softmaxreg fits the CUDA tensors directly (solver "auto");
scikit-learn's ``LogisticRegression(solver="lbfgs")`` fits a host copy with all the machine's
cores. Both objectives are evaluated by the same NumPy formula on the host, and scikit-learn's
iterations are capped (``--sklearn-max-iter``) so the script fits in 10 minutes; the table says
whether scikit-learn stopped by its tolerance or by the cap.

    python benchmarks/gpu.py            # the full problem; writes the "gpu" section of RESULTS.md
    python benchmarks/gpu.py --quick    # a small smoke test (torch CPU if no CUDA), writes nothing
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_description, write_section  # noqa: E402


def make_problem(torch, n, d, K, device, seed=0):
    """Features N(0, 1), true coefficients N(0, 1/d) * 3, labels sampled from the softmax."""
    generator = torch.Generator(device=device).manual_seed(seed)
    X = torch.randn(n, d, generator=generator, device=device, dtype=torch.float32)
    W = torch.randn(K, d, generator=generator, device=device, dtype=torch.float32) * (3 / d**0.5)
    logits = X @ W.T
    gumbel = -torch.log(-torch.log(torch.rand(n, K, generator=generator, device=device)))
    y = torch.argmax(logits + gumbel, dim=1)
    return X, y


def objective_value(X, y, coef, intercept, C):
    """``f / (C n)``: mean log-loss + ||W||^2 / (2 C n), in float64 on the host, by chunks."""
    n = X.shape[0]
    total = 0.0
    for start in range(0, n, 100_000):
        scores = X[start : start + 100_000].astype(np.float64) @ coef.T.astype(np.float64)
        scores += intercept
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1))
        rows = np.arange(scores.shape[0])
        total += float(np.sum(log_norm - scores[rows, y[start : start + 100_000]]))
    return total / n + 0.5 * float(np.sum(coef.astype(np.float64) ** 2)) / (C * n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke test, no RESULTS.md")
    parser.add_argument("--sklearn-max-iter", type=int, default=300)
    parser.add_argument("--tol", type=float, default=1e-5, help="softmaxreg tol (float32)")
    args = parser.parse_args(argv)

    import torch
    from sklearn.linear_model import LogisticRegression

    from softmaxreg import SoftmaxRegression

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    n, d, K = (1_000_000, 256, 100) if not args.quick else (20_000, 32, 10)
    C = 1.0
    X, y = make_problem(torch, n, d, K, device)
    if cuda:
        torch.cuda.synchronize()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    # warm-up (CUDA context, cuBLAS handles) on a slice, not timed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 2-iteration warm-up does not converge
        SoftmaxRegression(max_iter=2, tol=0).fit(X[:10_000], y[:10_000])
    sync()
    start = time.perf_counter()
    ours = SoftmaxRegression(C=C, tol=args.tol).fit(X, y)
    sync()
    ours_time = time.perf_counter() - start

    X_host, y_host = X.cpu().numpy(), y.cpu().numpy()
    threads = os.cpu_count()
    start = time.perf_counter()
    reference = LogisticRegression(C=C, tol=1e-6, max_iter=args.sklearn_max_iter).fit(
        X_host, y_host
    )
    sklearn_time = time.perf_counter() - start
    sklearn_iter = int(np.max(reference.n_iter_))

    f_ours = objective_value(
        X_host, y_host, ours.coef_.cpu().numpy(), ours.intercept_.cpu().numpy(), C
    )
    f_ref = objective_value(X_host, y_host, reference.coef_, reference.intercept_, C)
    ratio = sklearn_time / ours_time
    gpu_name = torch.cuda.get_device_name() if cuda else "no GPU (torch CPU)"
    rows = [
        "| fit | device | seconds | objective f/(C n) | iterations |",
        "|---|---|---|---|---|",
        f"| softmaxreg ({ours.solver_}, tol {args.tol:g}) | {gpu_name} | {ours_time:.2f} | "
        f"{f_ours:.8f} | {ours.n_iter_} |",
        f"| scikit-learn lbfgs (tol 1e-6, max_iter {args.sklearn_max_iter}) | {threads} CPU "
        f"cores | {sklearn_time:.2f} | {f_ref:.8f} | {sklearn_iter}"
        f"{' (cap reached)' if sklearn_iter >= args.sklearn_max_iter else ''} |",
    ]
    body = "\n".join(
        [
            "## GPU",
            "",
            f"{n:,} x {d} float32, K = {K}, C = {C}, L2 (`python benchmarks/gpu.py`); "
            "softmaxreg on CUDA tensors, scikit-learn on a host copy.",
            "",
            *rows,
            "",
            f"scikit-learn time / softmaxreg time: **{ratio:.1f}x** (objective difference "
            f"{f_ref - f_ours:+.2e}; positive means softmaxreg is lower).",
            "",
            f"Machine: {machine_description()}; torch {torch.__version__}.",
        ]
    )
    print(body)
    if not args.quick:
        write_section("gpu", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
