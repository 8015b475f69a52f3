"""``solver="auto"``: the choice rule, by problem shape, sparsity, dtype and penalty.

Rule for the smooth penalties ("l2" and None), with ``p = d + fit_intercept``:

- ``newton-cholesky`` when ``K * p <= 100``: the Hessian costs less than a few passes, and
  exact Newton steps end at machine precision in a handful of iterations.
- ``newton-cg`` otherwise, dense or sparse, float32 or float64: trust-region Newton-CG whose
  preconditioner adapts to the problem (Kronecker-factored for dense X up to 2,000 columns,
  Jacobi for sparse or wider X, the exact Hessian at an earlier iterate when CG turns out
  slow and ``K * p <= 1,500``). In ``benchmarks/RESULTS.md`` it needs 25-120 loss+gradient
  pass equivalents on every problem, where L-BFGS needs 80-650.

Non-smooth penalties ("l1", "elasticnet", "grouped") always get ``prox-newton``.

``lbfgs`` stays available by name (lowest memory per iteration).
"""

from __future__ import annotations

NEWTON_CHOLESKY_MAX_PARAMS = 100


def choose_solver(X, n_classes: int, penalty, fit_intercept: bool = True) -> str:
    """Name of the solver that ``solver="auto"`` runs for this problem."""
    if penalty in ("l1", "elasticnet", "grouped"):
        # The only solver for the non-smooth penalties (working-set proximal Newton).
        return "prox-newton"
    n_params = n_classes * (X.shape[1] + int(fit_intercept))
    if n_params <= NEWTON_CHOLESKY_MAX_PARAMS:
        return "newton-cholesky"
    return "newton-cg"
