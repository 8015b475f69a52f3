"""``solver="auto"``: the choice rule, by problem shape and penalty.

Smooth penalties ("l2" and None), with ``p = d + fit_intercept``:

- ``newton-cholesky`` when ``K * p <= 100`` and one Hessian costs at most a million
  multiply-adds, ``n (K p)^2 <= 1e6``: such a fit is a few dozen NumPy calls whatever the
  solver, and exact Newton steps need the fewest;
- ``newton-cg`` otherwise, dense or sparse, float32 or float64: a Hessian costs
  ``n (K p)^2`` where a Hessian-vector product costs ``4 n K p``, so with more rows or
  parameters products win.

Non-smooth penalties ("l1", "elasticnet", "grouped") always get ``prox-newton``. ``lbfgs``
stays available by name: preconditioned by Newton-CG's Kronecker factor it copes with
rescaled and shifted features, but it converges linearly, so it needs more passes than the
Newton solvers. The ``choice`` section of
``benchmarks/RESULTS.md`` times every smooth solver against this rule.
"""

from __future__ import annotations

NEWTON_CHOLESKY_MAX_PARAMS = 100
NEWTON_CHOLESKY_MAX_WORK = 1_000_000  # n * (K p)^2, the multiply-adds of one Hessian


def choose_solver(X, n_classes: int, penalty, fit_intercept: bool = True) -> str:
    """Name of the solver that ``solver="auto"`` runs for this problem.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, d)
    n_classes : int
    penalty : {"l2", None, "l1", "elasticnet", "grouped"}
    fit_intercept : bool

    Returns
    -------
    str
        ``"newton-cholesky"``, ``"newton-cg"`` or ``"prox-newton"``.
    """
    if penalty in ("l1", "elasticnet", "grouped"):
        # The only solver for the non-smooth penalties (working-set proximal Newton).
        return "prox-newton"
    n_params = n_classes * (X.shape[1] + int(fit_intercept))
    if (
        n_params <= NEWTON_CHOLESKY_MAX_PARAMS
        and X.shape[0] * n_params**2 <= NEWTON_CHOLESKY_MAX_WORK
    ):
        return "newton-cholesky"
    return "newton-cg"
