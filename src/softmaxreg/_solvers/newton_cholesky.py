"""Newton's method with the full Hessian, factored by Cholesky: for small ``K * p``.

Each iteration assembles the Hessian of the smooth objective (cost ``O(n (K p)^2)``), solves
for the Newton direction and backtracks on the objective (Armijo). The exact Newton decrement
``-g . d / 2`` is the stopping rule's measure (``_stopping``); by quadratic convergence the
last step ends at machine precision, so weighted and repeated-sample fits agree exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._preconditioners import gauge_fixed
from ._result import SolverResult, center_classes, max_abs, report, within_rounding
from ._stopping import WorkCounter, decrement_threshold

ARMIJO = 1e-4  # sufficient decrease: any positive share of the slope's promise
MAX_HALVINGS = 40  # 2^-40: a step below the parameters' precision


def _newton_direction(hessian: np.ndarray, gradient: np.ndarray, shape) -> np.ndarray:
    matrix = gauge_fixed(hessian.astype(np.float64, copy=False), shape)
    rhs = -gradient.ravel().astype(np.float64)
    try:
        factor = scipy.linalg.cho_factor(matrix, lower=False, check_finite=False)
        direction = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        # singular (rank-deficient design, no penalty): the minimum-norm Newton step, every
        # curvature above the matrix's rounding kept (a coarser cut leaves flat but real
        # directions unstepped, and convergence linear)
        direction = scipy.linalg.lstsq(matrix, rhs, check_finite=False)[0]
    if not np.all(np.isfinite(direction)):
        direction = rhs
    return direction.reshape(shape)


def newton_cholesky(objective, params0, tol=None, max_iter=100, verbose=0) -> SolverResult:
    """Minimise a smooth objective with full Newton steps.

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss``, ``loss_gradient`` and ``hessian``.
    params0 : ndarray of shape (K, p)
    tol : float or None
        The stopping rule's relative decrement (``_stopping``); None: ``DEFAULT_TOL``.
    max_iter : int
    verbose : int

    Returns
    -------
    SolverResult
    """
    counter = WorkCounter(objective)
    params = center_classes(np.asarray(params0, dtype=objective.dtype))
    value, gradient = counter.loss_gradient(params)
    converged, n_iter = False, 0
    while n_iter < max_iter:
        n_iter += 1
        # 1. the Newton direction and its decrement
        direction = _newton_direction(counter.hessian(params), gradient, params.shape)
        direction = direction.astype(params.dtype)
        slope = float(np.vdot(gradient, direction))
        if slope >= 0:  # not a descent direction (rounding): the gradient instead
            direction, slope = -gradient, -float(np.vdot(gradient, gradient))
        last = -slope / 2 <= decrement_threshold(tol, value, params.dtype)
        # 2. backtracking from the full step; a promise below the objective's precision
        # cannot be checked by values, and the full Newton step is taken
        step = 1.0
        trust_step = within_rounding(value, value + slope, params.dtype)
        for _ in range(MAX_HALVINGS):
            candidate = params + step * direction
            cand_value = counter.loss(candidate)
            if np.isfinite(cand_value) and (
                trust_step or (cand_value <= value + ARMIJO * step * slope and cand_value < value)
            ):
                break
            step *= 0.5
        else:  # no decrease at this precision: the current point is as good as it gets
            converged = last
            break
        # 3. the new iterate's pass
        params = candidate
        value, gradient = counter.loss_gradient(params)
        report(verbose, "newton-cholesky", n_iter, value, max_abs(gradient))
        if last:
            converged = True
            break
    return SolverResult(
        params=params,
        n_iter=n_iter,
        converged=converged,
        gradient_norm=max_abs(gradient),
        objective=value,
        n_passes=counter.passes,
    )
