"""Limited-memory BFGS with a backtracking Armijo line search.

One loss+gradient pass per accepted step in the common case: the trial point's gradient is
computed together with its loss and reused when the step is accepted.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ._result import SolverResult, center_classes, max_abs, report, within_rounding

_ARMIJO = 1e-4
# Stop after this many accepted steps in a row that change the objective by less than its
# rounding without lowering the smallest gradient seen: the gradient is then at its rounding
# level, where Armijo accepts steps on noise (iris at tol 1e-17 ran all of max_iter, its
# gradient wandering between 2e-16 and 1e-15 from the 100th iteration on).
STALLED_STEPS = 10


def _two_loop(gradient, pairs) -> np.ndarray:
    """``-H_k gradient`` by the L-BFGS two-loop recursion over ``(s, y, 1 / y.s)`` pairs."""
    q = gradient.astype(np.float64).ravel()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * np.dot(s, q)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q *= np.dot(s, y) / np.dot(y, y)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = rho * np.dot(y, q)
        q += (alpha - beta) * s
    return -q


def lbfgs(objective, params0, tol=1e-6, max_iter=1000, verbose=0, memory=20) -> SolverResult:
    """Minimise a smooth objective with L-BFGS.

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss_gradient``.
    params0 : ndarray of shape (K, p)
    tol : float
        Stop when ``max |gradient| <= tol``.
    max_iter : int
    verbose : int
    memory : int
        Number of curvature pairs kept.

    Returns
    -------
    SolverResult
    """
    shape = params0.shape
    params = center_classes(np.asarray(params0, dtype=objective.dtype))
    del params0  # the caller's start: not held through the fit (see _solvers)
    value, gradient = objective.loss_gradient(params)
    gradient_norm = max_abs(gradient)
    n_passes = 1.0
    pairs: deque = deque(maxlen=memory)
    n_iter = 0
    best_gradient_norm, stalled = gradient_norm, 0
    while gradient_norm > tol and n_iter < max_iter:
        n_iter += 1
        direction = _two_loop(gradient, pairs)
        if not pairs:
            direction /= max(1.0, float(np.linalg.norm(direction)))
        slope = float(np.dot(gradient.ravel(), direction))
        if slope >= 0:
            pairs.clear()
            direction = -gradient.ravel().astype(np.float64)
            direction /= max(1.0, float(np.linalg.norm(direction)))
            slope = float(np.dot(gradient.ravel(), direction))
        direction = direction.reshape(shape)
        step = 1.0
        for _ in range(40):
            candidate = params + (step * direction).astype(params.dtype)
            candidate_value, candidate_gradient = objective.loss_gradient(candidate)
            n_passes += 1
            if np.isfinite(candidate_value) and candidate_value <= value + _ARMIJO * step * slope:
                break
            if within_rounding(value, candidate_value, params.dtype) and max_abs(
                candidate_gradient
            ) < gradient_norm:
                break  # decrease below the objective's precision: the gradient decides
            step *= 0.5
        else:
            break  # no decrease possible at this precision
        s = (candidate - params).astype(np.float64).ravel()
        y = (candidate_gradient - gradient).astype(np.float64).ravel()
        sy = float(np.dot(s, y))
        if sy > 1e-12 * float(np.dot(y, y)):
            pairs.append((s, y, 1.0 / sy))
        stalled = stalled + 1 if within_rounding(value, candidate_value, params.dtype) else 0
        params, value, gradient = candidate, candidate_value, candidate_gradient
        gradient_norm = max_abs(gradient)
        report(verbose, "lbfgs", n_iter, value, gradient_norm)
        if gradient_norm < best_gradient_norm:
            best_gradient_norm, stalled = gradient_norm, 0
        if stalled >= STALLED_STEPS:
            break  # the gradient is at its rounding level
    return SolverResult(
        params=params,
        n_iter=n_iter,
        converged=gradient_norm <= tol,
        gradient_norm=gradient_norm,
        objective=value,
        n_passes=n_passes,
    )
