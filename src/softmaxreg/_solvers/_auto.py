"""``solver="auto"``: the choice rule, by problem shape, sparsity, dtype and penalty.

Rule (smooth penalties):

- ``newton-cholesky`` when the Hessian is small: ``K * p <= 400`` parameters, whatever n
  (one Hessian costs about as much as ``K * p / 4`` loss+gradient passes, and Newton needs
  ~5-10 of them, each converging quadratically).
- ``newton-cg`` otherwise (Kronecker-preconditioned for dense X, Jacobi for sparse).
"""

from __future__ import annotations

NEWTON_CHOLESKY_MAX_PARAMS = 400


def choose_solver(X, n_classes: int, penalty) -> str:
    """Name of the solver that ``solver="auto"`` runs for this problem."""
    n_params = n_classes * (X.shape[1] + 1)
    if n_params <= NEWTON_CHOLESKY_MAX_PARAMS:
        return "newton-cholesky"
    return "newton-cg"
