"""Trust-region Newton-CG: Steihaug's truncated conjugate gradient on Hessian-vector products.

Each iteration costs one pass over the data (loss, gradient and the probabilities that the
Hessian-vector products reuse) and a few products; no Hessian is formed, so it serves every
data kind (dense, sparse, Dask, array API) through the objective's small interface:
``loss_gradient_hessp``, the operator's ``__call__``, ``diagonal`` and ``class_curvature``,
and ``feature_gram``.

The loop, in phases:

1. pass: value, gradient and Hessian operator at the iterate;
2. inner solve: preconditioned CG on ``H z = -g`` inside the trust region, until the
   residual has shrunk by the forcing term in the preconditioner's metric. The
   preconditioner is Kronecker ``A kron G`` up to 2,000 columns (the coarse space on wider
   sparse X, Jacobi otherwise) until a solve costs more products than the exact
   within-class blocks of the Hessian cost to build; the blocks are then built at that
   iterate and kept until a solve in them costs as much again;
3. stop test: a step that CG solved to its forcing term predicts the Newton decrement; once
   that is below the threshold of the stopping rule (``_stopping``), the step is the last;
4. step and acceptance: the candidate's pass, the ratio of actual to predicted decrease,
   the radius update;
5. fallback: a fit that stops making progress hands over to newton-cholesky or L-BFGS.

Smooth penalties only. The data fit is flat along "one vector added to every class's row"
and smooth optima are class-centred, so iterates and CG's vectors are kept centred.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._loss import axpy, inner
from ._preconditioners import (
    ClassBlockPreconditioner,
    DiagonalPreconditioner,
    KroneckerPreconditioner,
)
from ._result import SolverResult, center_classes, class_mean, max_abs, report, within_rounding
from ._stopping import WorkCounter, decrement_threshold


@dataclass(frozen=True)
class Policy:
    """Newton-CG's thresholds, each with its principle."""

    # CG's relative residual bound far from the optimum (Eisenstat-Walker: coarse steps cost
    # few products there; it tightens with the decrement for superlinear convergence)
    forcing: float = 0.1
    # accept any step that realises a positive share of the decrease the model predicted
    accept: float = 1e-4
    # the model is poor below this ratio (shrink the region), good above grow_above (widen it)
    shrink_below: float = 0.25
    grow_above: float = 0.75
    shrink: float = 0.25
    # a good model at the boundary: widen four-fold, TRON's factor (Lin, Weng & Keerthi 2008),
    # so a region cut by early rejections regains the Newton step's length in a few steps
    grow: float = 4.0
    # this many rejected or unproductive steps in a row: the trust region is failing, hand over
    stall_steps: int = 6
    # CG at its iteration limit this many times in a row: the Hessian is too ill-conditioned
    # for CG at this precision, hand over
    cg_limit_steps: int = 2
    # the Kronecker preconditioner factors the p x p feature second moment once a fit
    kronecker_max_features: int = 2000
    # the fallback forms full Hessians up to this many parameters (a few MB, ms to factor)
    cholesky_max_params: int = 1000


POLICY = Policy()


def _steihaug(gradient, hessp, preconditioner, radius, forcing, max_cg):
    """Approximately minimise ``g.z + z.H z / 2`` subject to ``||z||_M <= radius``.

    ``M`` is the metric of ``preconditioner`` (``solve`` applies ``M^{-1}``). CG stops once the
    residual has shrunk by ``eta = min(forcing, (g.M^{-1}g)^(1/4))`` in the dual metric,
    ``r.M^{-1}r <= eta^2 g.M^{-1}g``: a test invariant to rescaling or shifting the features
    (the Euclidean one is met far from the Newton step when columns differ in scale by 1e6),
    tightening to superlinear convergence. The M-norms of the step and direction follow from
    CG's scalars (Conn, Gould & Toint, Trust-Region Methods, 2000, section 7.5.1), and so does
    the model's value. Returns the step, its M-length, the predicted decrease
    ``-(g.z + z.H z / 2)``, whether the step reached the boundary, whether CG met its
    forcing term (the step is then the Newton step to that accuracy).
    """
    z = np.zeros_like(gradient)
    r = gradient.copy()
    y = preconditioner.solve(r)
    d = np.negative(y)
    ry = inner(r, y)
    eta = min(forcing, max(ry, 0.0) ** 0.25)
    stop = eta * eta * ry
    zz, zd, dd = 0.0, 0.0, ry  # <z,z>_M, <z,d>_M, <d,d>_M
    model = 0.0  # g.z + z.H z / 2
    for _ in range(max_cg):
        hd = hessp(d)
        curvature = inner(d, hd)
        alpha = ry / curvature if curvature > 0 else 0.0
        if curvature <= 0 or zz + 2 * alpha * zd + alpha * alpha * dd >= radius**2:
            tau = (-zd + np.sqrt(max(zd * zd - dd * (zz - radius**2), 0.0))) / dd
            axpy(tau, d, z)
            model += -tau * ry + 0.5 * tau * tau * curvature
            return z, radius, -model, True, False
        zz += 2 * alpha * zd + alpha * alpha * dd
        axpy(alpha, d, z)
        axpy(alpha, hd, r)
        model -= 0.5 * alpha * ry
        y = preconditioner.solve(r)
        ry_next = inner(r, y)
        if ry_next <= stop:  # solved to the forcing term (or r vanished in the metric)
            return z, float(np.sqrt(max(zz, 0.0))), -model, False, True
        beta = ry_next / ry
        zd = beta * (zd + alpha * dd)
        dd = ry_next + beta * beta * dd
        d *= beta
        d -= y
        ry = ry_next
    return z, float(np.sqrt(max(zz, 0.0))), -model, False, False


def _block_metric(hessp):
    """The exact class-block preconditioner, or None where its blocks cannot be factored at
    this precision."""
    try:
        return ClassBlockPreconditioner(hessp.class_blocks())
    except np.linalg.LinAlgError:
        return None


def _preconditioner_factory(objective, policy):
    """A function from the current operator to a preconditioner: Kronecker ``A kron G`` when
    the feature second moment ``G`` is small enough to factor once, Jacobi otherwise."""
    p = objective.shape[1]
    if p <= policy.kronecker_max_features and hasattr(objective, "feature_gram"):
        gram_eigen = np.linalg.eigh(objective.feature_gram())
        return lambda hessp: KroneckerPreconditioner(
            hessp.class_curvature(), gram_eigen, objective.l2_strength
        )
    coarse = getattr(objective, "coarse_space_preconditioner", None)
    if coarse is not None:
        return coarse
    return lambda hessp: DiagonalPreconditioner(hessp.diagonal())


def _cholesky_fits(objective, params, policy) -> bool:
    return params.size <= policy.cholesky_max_params and hasattr(objective, "hessian")


def _fallback(objective, params, tol, max_iter, verbose, policy):
    """Newton-Cholesky where the Hessian is small, L-BFGS otherwise, from ``params``."""
    from .lbfgs import lbfgs
    from .newton_cholesky import newton_cholesky

    solver = newton_cholesky if _cholesky_fits(objective, params, policy) else lbfgs
    return solver(objective, params, tol=tol, max_iter=max_iter, verbose=verbose)


def newton_cg(objective, params0, tol=None, max_iter=1000, verbose=0, policy=POLICY, fallback=True):
    """Minimise a smooth objective by trust-region Newton-CG.

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss_gradient_hessp`` (value, gradient [K, p], Hessian operator).
    params0 : ndarray of shape (K, p)
    tol : float or None
        The stopping rule's relative decrement (``_stopping``); None: ``DEFAULT_TOL``.
    max_iter : int
        Newton steps, fallback included.
    verbose : int
    policy : Policy
    fallback : bool
        Whether a stalled fit may hand over to L-BFGS (newton-cholesky is always allowed):
        L-BFGS's certification of its own optimum runs without it.

    Returns
    -------
    SolverResult
    """
    counter = WorkCounter(objective)
    params = center_classes(np.asarray(params0, dtype=objective.dtype))
    del params0
    make_preconditioner = _preconditioner_factory(objective, policy)
    max_cg = max(10, params.size)
    radius = None
    converged, unproductive, at_cg_limit, n_iter = False, 0, 0, 0
    block_price = int(np.ceil(WorkCounter.class_blocks_products(params.shape[1])))
    blocks = None  # the class blocks' preconditioner, once built
    # 1. pass
    value, gradient, hessp = counter.loss_gradient_hessp(params)
    can_buy = hasattr(hessp, "class_blocks")  # in-memory data only
    while n_iter < max_iter:
        n_iter += 1
        # 2. inner solve. CG in the current metric (Kronecker, or the exact class blocks of
        #    an earlier iterate) may spend what the blocks cost to build; past that, they
        #    are built at this iterate and the solve restarts in them (ski rental: at most
        #    twice the better choice's cost)
        metric = blocks if blocks is not None else make_preconditioner(hessp)
        if radius is None:  # a preconditioned gradient step's length
            radius = max(1.0, np.sqrt(max(inner(gradient, metric.solve(gradient)), 0.0)))
        limit = min(block_price, max_cg) if can_buy else max_cg
        step, length, predicted, on_boundary, solved = _steihaug(
            gradient, hessp, metric, radius, policy.forcing, limit
        )
        if limit < max_cg and not (solved or on_boundary):
            blocks = _block_metric(hessp)
            can_buy = blocks is not None
            if can_buy:
                step, length, predicted, on_boundary, solved = _steihaug(
                    gradient, hessp, blocks, radius, policy.forcing, max_cg
                )
        # 3. stop test: the Newton decrement is at most the threshold; this step is the last
        last = solved and predicted <= decrement_threshold(tol, value, params.dtype)
        # 4. step and acceptance
        candidate = params + step.astype(params.dtype, copy=False)
        candidate -= class_mean(candidate)
        cand_value, cand_gradient, cand_hessp = counter.loss_gradient_hessp(candidate)
        actual = value - cand_value
        if within_rounding(value, cand_value, params.dtype):
            # a change below the objective's precision: the gradient judges the step
            ratio = 1.0 if max_abs(cand_gradient) < max_abs(gradient) else -1.0
        else:
            ratio = actual / predicted if predicted > 0 else -1.0
        finite = bool(np.isfinite(cand_value))
        if not finite or ratio < policy.shrink_below:
            radius = policy.shrink * length
        elif ratio > policy.grow_above and on_boundary:
            radius = policy.grow * radius
        accepted = finite and ratio > policy.accept
        if accepted:
            params, value, gradient, hessp = candidate, cand_value, cand_gradient, cand_hessp
        report(verbose, "newton-cg", n_iter, value, max_abs(gradient))
        if last:  # the current point was within the threshold, the accepted step closer still
            converged = True
            break
        # 5. fallback: steps that keep failing mean the model cannot be trusted here
        unproductive = 0 if accepted and ratio > policy.shrink_below else unproductive + 1
        at_cg_limit = 0 if solved or on_boundary else at_cg_limit + 1
        stalled = unproductive >= policy.stall_steps or at_cg_limit >= policy.cg_limit_steps
        if stalled and (fallback or _cholesky_fits(objective, params, policy)):
            result = _fallback(objective, params, tol, max_iter - n_iter, verbose, policy)
            result.n_iter += n_iter
            result.n_passes += counter.passes
            return result
    return SolverResult(
        params=np.ascontiguousarray(params),
        n_iter=n_iter,
        converged=converged,
        gradient_norm=max_abs(gradient),
        objective=value,
        n_passes=counter.passes,
    )
