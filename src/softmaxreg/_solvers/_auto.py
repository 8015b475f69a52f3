"""``solver="auto"``: the choice rule, by problem shape, sparsity, dtype and penalty.

Rule for the smooth penalties ("l2" and None), with ``p = d + fit_intercept``:

- ``newton-cholesky`` when ``K * p <= 100`` and one Hessian costs at most a million
  multiply-adds, ``n (K p)^2 <= 1e6``: on such small problems a fit is a few dozen NumPy
  calls whatever the solver, exact Newton steps need the fewest (iris 3.0 ms against
  newton-cg's 3.5 ms) and end at machine precision, so weighted and repeated-sample fits
  agree exactly.
- ``newton-cg`` otherwise, dense or sparse, float32 or float64: trust-region Newton-CG whose
  preconditioner adapts to the problem (Kronecker-factored for dense X up to 2,000 columns,
  coarse-space for sparse X, Jacobi for wider X). A Hessian costs ``n (K p)^2`` where a
  Hessian-vector product costs ``4 n K p``, so with more rows Newton-CG wins even at small
  ``K * p``: newton-cholesky takes 1.51x its time on 2,000 x 9, K=3, 1.95x on 2,000 x 14,
  K=6 and 5.1x on 20,000 x 10, K=8 (``K * p`` 30, 90 and 88); L-BFGS takes 1.8-20x its
  time on the solver benchmark's problems and the three 20,000-row ones (on the two float32
  problems it does not come within 1e-7 of the optimum at all).

The ``choice`` section of ``benchmarks/RESULTS.md`` (``benchmarks/choice.py``) runs every
smooth solver on 19 problems, every BLAS on one thread, the solvers' timed runs alternating:
auto's pick is the fastest on 17 and takes 1.02x and 1.13x the fastest's time on the other
two (the demo: newton-cholesky 3.0 ms, L-BFGS 2.9 ms; 2,000 x 9, K=3: L-BFGS 4.9 ms,
newton-cg 5.5 ms; session 18's run, on an Intel Xeon).

Non-smooth penalties ("l1", "elasticnet", "grouped") always get ``prox-newton``.

``lbfgs`` stays available by name. It needs no preconditioner and so the least memory where
the n x K arrays dominate (20,000 x 50, K=5: a fit's peak 1.8 MB against newton-cg's 12 MB),
but its 20 curvature pairs are 40 [K, p] arrays, which dominate on wide sparse X (2,000 x
20,000, K=10: 82 MB against newton-cg's 24 MB).
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
