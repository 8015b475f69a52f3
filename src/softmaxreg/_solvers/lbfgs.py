"""Limited-memory BFGS with a backtracking Armijo line search, preconditioned.

One loss+gradient pass per accepted step in the common case: the trial point's gradient is
computed together with its loss and reused when the step is accepted. The two-loop
recursion starts from ``gamma M^{-1}`` instead of ``gamma I``, with ``M`` the exact
within-class blocks of the Hessian where they cost at most the ``memory`` passes they
serve, Newton-CG's preconditioner otherwise (Kronecker ``A kron G`` where the feature second
moment fits in memory), rebuilt every ``memory`` iterations: rescaled and shifted features
then barely change the iterates, where plain L-BFGS crawls (1,000 iterations without
converging on columns scaled over 1e-3..1e3 or offset by 1e3). L-BFGS's own estimate
of the Newton decrement, ``-g . d / 2`` for the two-loop direction ``d``, only says when to
check: its inverse-Hessian estimate knows nothing of directions the iterates never explored
(on features of size 1e4 it claims a gap of 1e-12 where the true one is 1e-1). The stopping
rule (``_stopping``) is then certified by Newton-CG from that point, which computes the real
decrement and, where L-BFGS was right, ends after one or two steps.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ._result import SolverResult, center_classes, max_abs, report, within_rounding
from ._stopping import WorkCounter, decrement_threshold

ARMIJO = 1e-4  # sufficient decrease: any positive share of the slope's promise
MAX_HALVINGS = 40  # 2^-40: a step below the parameters' precision
# accepted steps in a row that change the objective by less than its rounding without
# lowering the smallest gradient seen: the iterate is at its rounding level
STALLED_STEPS = 10
# the inverse-Hessian estimate needs this many curvature pairs before its decrement is read,
# and the decrement must be below the threshold at this many full steps in a row (the
# estimate is only as good as the pairs, which a single lucky step does not show)
MIN_PAIRS = 3
CONFIRMATIONS = 2


def _two_loop(gradient, pairs, precondition) -> np.ndarray:
    """``-H_k gradient`` by the L-BFGS two-loop recursion over ``(s, y, 1 / y.s)`` pairs, from
    ``H_0 = gamma M^{-1}`` (``precondition`` applies ``M^{-1}`` to a flat vector)."""
    q = gradient.astype(np.float64).ravel()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * np.dot(s, q)
        q -= alpha * y
        alphas.append(alpha)
    q = precondition(q)
    if pairs:
        s, y, _ = pairs[-1]
        q *= np.dot(s, y) / np.dot(y, precondition(y))
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = rho * np.dot(y, q)
        q += (alpha - beta) * s
    return -q


def _evaluate(counter, params, with_operator: bool):
    """One pass at ``params``: value, gradient and, when asked, the Hessian operator (else
    None), which costs no more than the pass."""
    if with_operator:
        return counter.loss_gradient_hessp(params)
    value, gradient = counter.loss_gradient(params)
    return value, gradient, None


def _metric(hessp, shape, make_metric, memory):
    """``M^{-1}`` on flat vectors from the Hessian operator at an iterate: the exact class
    blocks where they cost at most the ``memory`` passes they serve, else Newton-CG's
    preconditioner (``make_metric``); the identity without Hessian operators."""
    if hessp is None:
        return lambda vector: vector
    from .newton_cg import _block_metric

    metric = None
    blocks_pay = WorkCounter.class_blocks_passes(shape[1]) <= memory
    if blocks_pay and hasattr(hessp, "class_blocks"):
        metric = _block_metric(hessp)
    if metric is None:
        metric = make_metric(hessp)

    def precondition(vector):
        return np.asarray(metric.solve(vector.reshape(shape)), dtype=np.float64).ravel()

    return precondition


def lbfgs(objective, params0, tol=None, max_iter=1000, verbose=0, memory=20) -> SolverResult:
    """Minimise a smooth objective with L-BFGS.

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss_gradient``.
    params0 : ndarray of shape (K, p)
    tol : float or None
        The stopping rule's relative decrement (``_stopping``); None: ``DEFAULT_TOL``.
    max_iter : int
    verbose : int
    memory : int
        Number of curvature pairs kept.

    Returns
    -------
    SolverResult
    """
    counter = WorkCounter(objective)
    shape = params0.shape
    params = center_classes(np.asarray(params0, dtype=objective.dtype))
    del params0  # the caller's start: not held through the fit (see _solvers)
    make_metric = None
    if hasattr(objective, "loss_gradient_hessp"):
        from .newton_cg import POLICY, _preconditioner_factory

        make_metric = _preconditioner_factory(counter, POLICY)
    value, gradient, hessp = _evaluate(counter, params, make_metric is not None)
    precondition = _metric(hessp, shape, make_metric, memory)
    del hessp
    pairs: deque = deque(maxlen=memory)
    certify, n_iter, below = False, 0, 0
    best_gradient_norm, stalled = max_abs(gradient), 0
    while n_iter < max_iter:
        n_iter += 1
        # 1. the quasi-Newton direction and its decrement estimate
        direction = _two_loop(gradient, pairs, precondition)
        slope = float(np.dot(gradient.ravel(), direction))
        if slope >= 0:  # the pairs lost positive definiteness: the preconditioned gradient
            pairs.clear()
            direction = _two_loop(gradient, pairs, precondition)
            slope = float(np.dot(gradient.ravel(), direction))
        if not pairs:  # a step of length at most 1 in the metric
            length = np.sqrt(max(-slope, 0.0))
            if length > 1.0:
                direction /= length
                slope /= length
        direction = direction.reshape(shape)
        last = len(pairs) >= MIN_PAIRS and -slope / 2 <= decrement_threshold(
            tol, value, params.dtype
        )
        # 2. backtracking line search. The class curvature goes stale as the probabilities
        #    sharpen, so once the pairs have turned over the metric is rebuilt from the
        #    accepted trial's Hessian operator
        refresh = make_metric is not None and n_iter % memory == 0
        step = 1.0
        for _ in range(MAX_HALVINGS):
            candidate = params + (step * direction).astype(params.dtype)
            cand_value, cand_gradient, cand_hessp = _evaluate(counter, candidate, refresh)
            if np.isfinite(cand_value) and cand_value <= value + ARMIJO * step * slope:
                break
            if within_rounding(value, cand_value, params.dtype) and max_abs(
                cand_gradient
            ) < max_abs(gradient):
                break  # decrease below the objective's precision: the gradient decides
            step *= 0.5
        else:
            certify = True  # no decrease at this precision: Newton decides
            break
        # 3. the curvature pair and the new iterate
        s = (candidate - params).astype(np.float64).ravel()
        y = (cand_gradient - gradient).astype(np.float64).ravel()
        sy = float(np.dot(s, y))
        if sy > 1e-12 * float(np.dot(y, y)):
            pairs.append((s, y, 1.0 / sy))
        stalled = stalled + 1 if within_rounding(value, cand_value, params.dtype) else 0
        params, value, gradient = candidate, cand_value, cand_gradient
        if refresh:
            precondition = _metric(cand_hessp, shape, make_metric, memory)
        del cand_hessp
        gradient_norm = max_abs(gradient)
        report(verbose, "lbfgs", n_iter, value, gradient_norm)
        below = below + 1 if last and step == 1.0 else 0
        if below >= CONFIRMATIONS:
            certify = True
            break
        if gradient_norm < best_gradient_norm:
            best_gradient_norm, stalled = gradient_norm, 0
        if stalled >= STALLED_STEPS:
            certify = True  # the gradient is at L-BFGS's rounding level: Newton decides
            break
    if certify and hasattr(objective, "loss_gradient_hessp"):
        from .newton_cg import newton_cg

        result = newton_cg(
            objective, params, tol, max(max_iter - n_iter, 1), verbose, fallback=False
        )
        result.n_iter += n_iter
        result.n_passes += counter.passes
        return result
    converged = certify and below >= CONFIRMATIONS
    return SolverResult(
        params=params,
        n_iter=n_iter,
        converged=converged,
        gradient_norm=max_abs(gradient),
        objective=value,
        n_passes=counter.passes,
    )
