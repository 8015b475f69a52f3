"""Proximal Newton with working sets: the solver for ``"l1"``, ``"elasticnet"`` and ``"grouped"``.

Problem (the scaled objective of ``_objective``)::

    F(params) = F_smooth(params) + lam * Omega(W),   lam = objective.nonsmooth_threshold

with ``F_smooth`` the data fit plus the ridge part and ``Omega`` the L1 norm or the sum of the
column norms of ``W`` [K, d] (the intercept column is never penalised).

Three nested loops, all vectorised (no Python loop over features or samples):

1. **Working sets** (the active-set / screening layer, as in glmnet's strong rules and in the
   working-set solvers celer and blitz). Only the feature columns that are nonzero or violate
   the optimality conditions most are handed to the inner solver; the rest stay exactly zero.
   The restricted problem on those columns has the same scores ``X W^T`` (every nonzero
   column is in it), so its gradient on the working set *is* the full gradient there. After a
   restricted solve one full gradient pass checks the conditions for every feature and either
   certifies the solution or grows the set (at least doubling). At a small ``C`` (or at a
   warm start along a path) the restricted problems are a small fraction of the data.
2. **Proximal Newton** on the restricted problem (the outer iteration of glmnet and of
   newGLMNET): a quadratic model of ``F_smooth`` at the current point plus the exact
   ``lam * Omega``, minimised approximately, then a backtracking line search on ``F``.
   Converges superlinearly once the inner solves are accurate enough, which is what reaching
   1e-6 relative objective needs; first-order methods (SAGA, FISTA on ``F``) pay a full data
   pass for each of their many iterations there.
3. **The quadratic model** is minimised in two alternating phases (as FPC_AS, Wen, Yin,
   Goldfarb & Zhang 2010, and the orthant-based methods of Byrd, Chin, Nocedal & Oztoprak):
   FISTA steps in the metric of the Hessian diagonal (Jacobi-preconditioned accelerated
   proximal gradient, with backtracking and adaptive restart) identify the support and the
   signs; then a Newton step of the model restricted to that support, where the model is
   smooth (fixed signs for L1, differentiable column norms for "grouped"), solves it at once,
   stopping at the first coefficient (column) that would cross zero, which becomes exactly
   zero. The Newton step is preconditioned conjugate gradients on Hessian-vector products
   (two sparse or dense products with ``K`` columns, on the restricted data only); for small
   problems (``K * p <= 1000`` and a Hessian that costs at most ~200 products) the Hessian is
   formed once per Newton iteration and the step is a Cholesky solve, exact even on the
   ill-conditioned problems where CG stalls (one-hot columns that sum to the intercept).

Why not glmnet's coordinate descent: it is sequential, so without compiled extensions it is
a Python loop over coordinates, at roughly 10 microseconds per update: one sweep over the
20 x 56,000 coefficients of 20 Newsgroups would take about 10 s, where one Hessian-vector
product on its working set takes milliseconds. The scheme above keeps the proximal Newton
outer loop, which reaches 1e-6 relative objective in tens of iterations where SAGA needs
thousands of epochs, and does all its arithmetic in matrix products.

Safeguards: the model's Hessian is damped ``H + mu I`` (Levenberg-Marquardt) after a bad
prediction (on near-separable text some coefficients have no curvature and the undamped
model moves them by thousands); unit steps that F rewards more than predicted are extended;
model values are kept as differences from the current point (decreases near the solution are
far below the rounding error of F itself); iterates are float64 even for float32 data.

Zeros are exact: they come from the proximal operators and the zero crossings, never from
rounding small values. Convergence is certified by ``max |min_norm_subgradient of F|`` over
*all* coefficients (``|gradient|`` for the unpenalised intercepts), the same measure as the
smooth solvers' ``max |gradient|``, brought below ``tol`` and below ``tol / 10`` relative to
the threshold ``lam`` (``stopping_threshold``): at an L1 solution every smooth gradient entry
is at most ``lam``, so an absolute ``tol`` alone leaves the KKT conditions of a weakly
penalised fit (``lam`` = 1e-5, say) violated by whole percents. Proximal Newton converges
superlinearly, so the relative digits cost one or two more Newton iterations.

Coefficients are not centred over classes (with an L1 penalty the minimiser is not the
centred representative); the intercepts, which no penalty pins down, are returned with mean
zero.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .._objective import SoftmaxObjective
from .._penalties import min_norm_subgradient, omega, prox
from ._block_hessian import block_hessian
from ._result import SolverResult, max_abs, report, within_rounding

_ARMIJO = 1e-4
# Smallest working set grown from an all-zero start (features).
_MIN_WORKING_SET = 64
# The working set holds this many times the current support (celer uses 2).
_GROWTH = 2
# Restrict only when the working set is at most this fraction of the features: slicing X costs
# about one data pass, which is not worth it for nearly the whole matrix.
_RESTRICT_FRACTION = 0.5
# Inner accuracy: the quadratic model is solved until its optimality violation is this fraction
# of the outer violation (a forcing sequence, which gives superlinear convergence).
_FORCING = 0.1
# Hessian-vector products allowed for one quadratic model.
_MAX_PRODUCTS = 500
_MAX_EXPLICIT_PRODUCTS = 10_000  # with the Hessian formed, a product costs (K p)^2 flops
# A model round gaining less than this fraction of the total model decrease has stalled.
_STALL = 1e-5
# Consecutive subspace steps on a shrinking support (explicit Hessian only).
_ACTIVE_SET_STEPS = 10
# Newton iterations without a new lowest violation before giving up (precision reached).
_NO_PROGRESS = 8
# Form the Hessian explicitly for at most this many parameters K * p, when it costs at most
# this many flops (n * (K * p)**2; about a second) and this many Hessian-vector products.
_EXPLICIT_MAX_PARAMS = 1000
_EXPLICIT_MAX_FLOPS = 4e10
_EXPLICIT_PRODUCTS = 200
# Centre the columns (an exact change of the intercepts) when one's mean exceeds this many of
# its standard deviations: the Gram matrix of that column and the intercept then has a
# condition number above about its square; below, the copy of X would buy nothing.
_CENTRE_RATIO = 10.0
# Try longer steps when F dropped this many times more than the model predicted.
_EXTRAPOLATE = 1.5
_MAX_EXTRAPOLATIONS = 4
# The stopping rule's relative part: the violation is also brought to this fraction of
# ``tol`` times ``lam`` (the threshold, the scale of the gradient at an L1 solution).
_RELATIVE = 0.1


# A Newton step with a kept (stale) Hessian must shrink the violation at least this much for
# the Hessian to be kept for the next step; otherwise it is formed again at the new point.
_STALE_CONTRACTION = 0.25


# --------------------------------------------------------------------------- the kept Hessian
class _HessianCache:
    """The data part of the explicit Hessian, kept between Newton steps, working sets and the
    ``C`` of a path (shared by the objectives of one path through ``with_C``).

    Forming it costs ``K (K + 1) / 2 n p^2`` flops, a hundred data passes or more, while the
    Hessian changes little between consecutive Newton iterates and consecutive solutions of a
    path. A kept Hessian gives linear instead of quadratic convergence, so it is kept only
    while it contracts the violation by ``_STALE_CONTRACTION`` a step (``usable``).
    It is stored for the features ``columns`` (indices into the full problem's features;
    restricted problems use the block of their own features).
    """

    def __init__(self):
        self.columns = None  # feature indices of the full problem
        self.data = None  # [K * p, K * p], divided by the total weight, without the ridge
        self.usable = False

    @staticmethod
    def of(objective) -> _HessianCache:
        cache = objective.__dict__.get("_prox_newton_hessians")
        if cache is None:
            cache = _HessianCache()
            objective._prox_newton_hessians = cache
        return cache

    def _positions(self, columns, K, fit_intercept):
        """Rows of the kept matrix for ``columns`` (None when it does not hold them all)."""
        if self.data is None:
            return None
        where = np.searchsorted(self.columns, columns)
        where = np.minimum(where, len(self.columns) - 1)
        if len(columns) and not np.array_equal(self.columns[where], columns):
            return None
        p_kept = len(self.columns) + int(fit_intercept)
        local = np.append(where, len(self.columns)) if fit_intercept else where
        return (np.arange(K)[:, None] * p_kept + local[None, :]).ravel()

    def matrix(self, objective, params, columns, counters):
        """The Hessian of ``objective``'s ``F_smooth`` [K*p, K*p] at (or near) ``params``."""
        X = objective.X
        if not (isinstance(X, np.ndarray) or sp.issparse(X)):  # array API data: no cache
            counters["fresh"] = True
            counters["passes"] += params.size / 4.0
            hessian = objective.hessian(params.astype(np.float64))
            return hessian.astype(np.float64, copy=False)
        K = params.shape[0]
        rows = self._positions(columns, K, objective.fit_intercept) if self.usable else None
        if rows is None:
            data = block_hessian(
                objective.X, params, objective.sample_weight, objective.fit_intercept
            )
            data /= objective.weight_sum
            counters["passes"] += params.size / 4.0
            self.columns, self.data = np.array(columns), data
            matrix = data.copy()
            counters["fresh"] = True
        else:
            matrix = self.data[np.ix_(rows, rows)]
            counters["fresh"] = False
        if objective.l2_strength:
            ridge = np.zeros(params.shape)
            layout_coef = ridge[:, :-1] if objective.fit_intercept else ridge
            layout_coef[...] = objective.l2_strength
            matrix[np.diag_indices_from(matrix)] += ridge.ravel()
        return matrix


# --------------------------------------------------------------------------- helpers
class _Layout:
    """Where the penalised coefficients sit in ``params`` [K, p] (the intercept is last).

    ``means`` [d]: the column means the solver's data were centred at (``_centred``), or
    None. The optimality measure is then that of the problem on the caller's data: its
    coefficient gradient is ``G + g_b m^T`` for the centred problem's ``G`` and intercept
    gradient ``g_b``.
    """

    def __init__(self, fit_intercept: bool, name: str, lam: float, means=None):
        self.fit_intercept = fit_intercept
        self.name = name
        self.lam = lam
        self.means = means

    def coef(self, params: np.ndarray) -> np.ndarray:
        return params[:, :-1] if self.fit_intercept else params

    def restricted(self, columns: np.ndarray) -> _Layout:
        """The layout of the problem restricted to the feature ``columns``."""
        means = None if self.means is None else self.means[columns]
        return _Layout(self.fit_intercept, self.name, self.lam, means)

    def violation(self, params: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Minimal-norm subgradient of ``F`` [K, p] (intercept part: the gradient)."""
        result = gradient.copy()
        coef_gradient = self.coef(gradient)
        if self.means is not None:
            coef_gradient = coef_gradient + np.outer(gradient[:, -1], self.means)
        self.coef(result)[...] = min_norm_subgradient(
            self.coef(params), coef_gradient, self.lam, self.name
        )
        return result

    def omega(self, params: np.ndarray) -> float:
        return omega(self.coef(params), self.name)

    def omega_change(self, params: np.ndarray, new: np.ndarray) -> float:
        """``Omega(new) - Omega(params)``, summed term by term (exact for small changes)."""
        old, new = self.coef(params).astype(np.float64), self.coef(new).astype(np.float64)
        if self.name == "grouped":
            # ||new|| - ||old|| = (new - old).(new + old) / (||new|| + ||old||): the direct
            # difference of the norms rounds to eps * ||old||, far above the model's
            # decreases near the solution (1e-18 there; the step then looks uphill).
            norm_sum = np.sqrt((new**2).sum(axis=0)) + np.sqrt((old**2).sum(axis=0))
            squares = ((new - old) * (new + old)).sum(axis=0)
            moved = norm_sum > 0
            return float((squares[moved] / norm_sum[moved]).sum())
        return float((np.abs(new) - np.abs(old)).sum())

    def prox(self, params: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Prox of ``lam * Omega`` in the diagonal metric ``1 / step`` (in place)."""
        coef = self.coef(params)
        threshold = self.lam * (step[0] if self.name == "grouped" else step)
        if self.fit_intercept:
            threshold = threshold[..., :-1]
        coef[...] = prox(coef, threshold, self.name)
        return params


def _column_scores(violation_coef: np.ndarray, name: str) -> np.ndarray:
    """How much each feature column violates optimality, [d]: what ranks working-set entries."""
    if name == "grouped":
        return np.sqrt((violation_coef.astype(np.float64) ** 2).sum(axis=0))
    return np.abs(violation_coef).max(axis=0)


def _restricted(objective, columns: np.ndarray):
    """The same objective on ``X[:, columns]`` (None where the objective cannot be restricted).

    Only in-memory objectives can be restricted; any other object of the protocol (the Dask
    one, say) is solved on all columns.
    """
    if type(objective) is not SoftmaxObjective:
        return None
    X = objective.X
    X_sub = X[:, columns]
    if sp.issparse(X_sub):
        X_sub = X_sub.tocsr()
    else:
        X_sub = np.ascontiguousarray(X_sub)
    return _on_data(objective, X_sub)


def _on_data(objective, X):
    """The same objective on other data ``X`` (its restriction, or its centred copy),
    sharing the kept Hessian, which is indexed by feature."""
    other = SoftmaxObjective(
        X,
        objective.y,
        objective.n_classes,
        objective.sample_weight,
        objective.fit_intercept,
        objective.C,
        objective.penalty,
    )
    other._prox_newton_hessians = _HessianCache.of(objective)
    return other


def _centred(objective):
    """The objective on columns centred at their (weighted) means, and the means [d] in
    float64; ``(objective, None)`` where X is not a dense in-memory array, there is no
    intercept, or no column's mean exceeds ``_CENTRE_RATIO`` times its standard deviation.

    With an intercept, ``X -> X - 1 m^T`` changes only the intercepts (``b -> b + W m``),
    neither ``W`` nor the penalty, so the solution maps back exactly. A column far from
    zero (a shift of 1e3, say) otherwise makes the intercept and its coefficients nearly
    collinear, and the quadratic models' FISTA and subspace steps crawl, hundreds of
    Newton iterations where the centred problem takes ten. The centred copy is kept on the
    objective, so a path (``with_C``) makes it once.
    """
    X = objective.X
    if type(objective) is not SoftmaxObjective or not objective.fit_intercept:
        return objective, None
    if not isinstance(X, np.ndarray):  # sparse X would lose its zeros
        return objective, None
    kept = objective.__dict__.get("_prox_newton_centred")
    if kept is None or kept[0] is not X:
        weights = np.ones(X.shape[0]) if objective.sample_weight is None else (
            np.asarray(objective.sample_weight, dtype=np.float64)
        )
        total = weights.sum()
        means = np.einsum("i,ij->j", weights, X, dtype=np.float64) / total
        # the spread from the second moment, without a centred copy where none is needed
        # (its cancellation only matters far below the ratio's scale)
        second = np.einsum("i,ij,ij->j", weights, X, X, dtype=np.float64) / total
        spread = np.sqrt(np.maximum(second - means**2, 0.0))
        if np.all(np.abs(means) <= _CENTRE_RATIO * spread):
            kept = (X, None, None)
        else:
            # subtracted in float64, then rounded once: float32 columns far from zero keep
            # their digits
            kept = (X, (X - means).astype(X.dtype, copy=False), means)
        objective._prox_newton_centred = kept
    if kept[1] is None:
        return objective, None
    # every objective of a path solves on the centred data: the kept Hessian is of them
    return _on_data(objective, kept[1]), kept[2]


def _sub_params(params: np.ndarray, columns: np.ndarray, fit_intercept: bool) -> np.ndarray:
    if fit_intercept:
        columns = np.append(columns, params.shape[1] - 1)
    return np.ascontiguousarray(params[:, columns])


def _scatter(params: np.ndarray, sub: np.ndarray, columns: np.ndarray, fit_intercept: bool):
    params[:, columns] = sub[:, : len(columns)]
    if fit_intercept:
        params[:, -1] = sub[:, -1]


# --------------------------------------------------------------------------- the quadratic model
def _metric(diagonal: np.ndarray, layout: _Layout) -> np.ndarray:
    """Positive diagonal metric [K, p]; for "grouped", constant over each coefficient column."""
    metric = np.array(diagonal, dtype=np.float64)
    floor = max(float(metric.max()), 1.0) * 1e-10
    np.maximum(metric, floor, out=metric)
    if layout.name == "grouped":
        coef = layout.coef(metric)
        coef[...] = coef.max(axis=0, keepdims=True)
    return metric


class _Model:
    """The quadratic model ``m(U) = g.(U-P) + 0.5 (U-P).H(U-P) + lam * Omega(U)`` at ``P``.

    It keeps the current iterate ``U`` and ``HU = H (U - P)`` (products are linear, so every
    step costs one Hessian-vector product) and minimises ``m`` by alternating two phases, as
    in FPC_AS (Wen, Yin, Goldfarb & Zhang 2010) and the orthant-based methods of Byrd et al.:

    - *identification*: preconditioned FISTA steps (proximal gradient in the metric
      ``L * diag(H)``, backtracking on ``L``, restart when the model goes up) until the
      support and signs stop changing;
    - *subspace*: on that support the model is smooth (fixed signs for L1; differentiable
      column norms for "grouped"), so a preconditioned conjugate-gradient Newton step
      solves it at once; the step is cut where a coefficient would change sign, and that
      coefficient becomes exactly zero.
    """

    def __init__(self, params, gradient, hessp, metric, layout, lipschitz, matrix=None):
        self.P = params
        self.g = gradient
        self.hessp = hessp
        # Explicit Hessian [K*p, K*p] in ``params.ravel()`` order (small dense problems): the
        # products are then cheap and the subspace step is a direct solve.
        self.matrix = matrix
        self.metric = metric
        self.layout = layout
        self.lipschitz = lipschitz
        self.U = params.copy()
        self.HU = np.zeros_like(params)
        # m(U) - m(P), kept as a difference: near the solution the decreases are far below
        # the rounding error of m itself.
        self.value = 0.0
        self.n_products = 0
        self.subspace_failed = False
        free = np.zeros(params.shape, dtype=bool)
        if layout.fit_intercept:
            free[:, -1] = True
        self._intercept_mask = free

    # ---------------------------------------------------------------- pieces
    def _hessp(self, direction):
        self.n_products += 1
        if self.matrix is not None:
            product = self.matrix @ direction.ravel().astype(np.float64)
            return product.reshape(direction.shape).astype(direction.dtype, copy=False)
        return self.hessp(direction)

    def _model_value(self, U, HU) -> float:
        """``m(U) - m(P)``."""
        D = U - self.P
        return (
            float(np.vdot(self.g, D))
            + 0.5 * float(np.vdot(D, HU))
            + self.layout.lam * self.layout.omega_change(self.P, U)
        )

    def violation(self) -> float:
        return max_abs(self.layout.violation(self.U, self.g + self.HU))

    def _pattern(self, U):
        """Support and signs (columns for "grouped") that the subspace step keeps fixed."""
        coef = self.layout.coef(U)
        if self.layout.name == "grouped":
            return np.any(coef != 0, axis=0)
        return np.sign(coef)

    # ---------------------------------------------------------------- identification
    def fista(self, target: float, max_steps: int, stable_steps: int = 3) -> None:
        """FISTA steps until the violation is below ``target``, the pattern is stable for
        ``stable_steps`` steps, or ``max_steps`` products were spent."""
        layout = self.layout
        U, HU, value = self.U, self.HU, self.value
        V, HV = U, HU
        t = 1.0
        pattern = self._pattern(U)
        stable = 0
        start = self.n_products
        while self.n_products - start < max_steps:
            grad_V = self.g + HV
            while True:
                step = 1.0 / (self.lipschitz * self.metric)
                Z = layout.prox((V - step * grad_V).astype(self.P.dtype), step)
                dZ = Z - V
                HdZ = self._hessp(dZ)
                curvature = float(np.vdot(dZ, HdZ))
                bound = self.lipschitz * float(np.vdot(dZ, self.metric * dZ))
                if curvature <= bound * (1 + 1e-10) or bound == 0.0:
                    break
                self.lipschitz *= 2.0
            HZ = HV + HdZ
            value_Z = self._model_value(Z, HZ)
            if value_Z > value and V is not U:
                # Adaptive restart (O'Donoghue & Candes): momentum overshot; step from U.
                V, HV, t = U, HU, 1.0
                continue
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_next
            V = Z + beta * (Z - U)
            HV = HZ + beta * (HZ - HU)
            U, HU, value, t = Z, HZ, value_Z, t_next
            self.U, self.HU, self.value = U, HU, value
            if self.violation() <= target:
                return
            new_pattern = self._pattern(U)
            stable = stable + 1 if np.array_equal(new_pattern, pattern) else 0
            pattern = new_pattern
            if stable >= stable_steps:
                return

    # ---------------------------------------------------------------- subspace Newton
    def subspace(self, target: float, max_steps: int) -> bool:
        """One Newton step of the model on the current support; True if it hit a boundary.

        For L1 the orthant is that of OWL-QN / OBA: nonzero entries keep their sign, zero
        entries whose model gradient exceeds ``lam`` may enter with the sign that lowers the
        model. An entering entry that the Newton step would move the wrong way is dropped and
        the step recomputed (with many entering at once, their joint step need not respect
        each one's sign; feature-sign search adds them one at a time for that reason).
        """
        layout, lam = self.layout, self.layout.lam
        U = self.U
        coef_U = layout.coef(U)
        grouped = layout.name == "grouped"
        unit = inv_norms = signs = entering = None
        free = self._intercept_mask.copy()
        if grouped:
            norms = np.sqrt((coef_U.astype(np.float64) ** 2).sum(axis=0))
            active = norms > 0
            layout.coef(free)[:, active] = True
            unit = np.zeros_like(coef_U)
            unit[:, active] = coef_U[:, active] / norms[active]
            inv_norms = np.zeros_like(norms)
            inv_norms[active] = 1.0 / norms[active]
        else:
            model_gradient = layout.coef(self.g + self.HU)
            signs = np.sign(coef_U)
            entering = (signs == 0) & (np.abs(model_gradient) > lam)
            signs[entering] = -np.sign(model_gradient[entering])
        for _ in range(2):
            if not grouped:
                layout.coef(free)[...] = signs != 0
            if not free.any():
                return False
            d, Hd = self._newton_step(free, signs, unit, inv_norms, target, max_steps)
            if grouped or not np.any(d):
                break
            wrong = entering & (layout.coef(d) * signs <= 0)
            if not wrong.any():
                break
            signs[wrong] = 0.0
            entering &= ~wrong
        if not np.any(d):
            return False
        if grouped:
            return self._grouped_search(d, Hd)
        # L1: the full step projected on the orthant (entries that would change sign become
        # exactly zero; the projection is not linear, so each trial costs one product). If it
        # fails, step to the first sign change: up to there the signs are fixed and the model
        # is exactly the smooth quadratic that d decreases; that entry becomes zero.
        coef_d = layout.coef(d)
        crossing = coef_d * signs < 0
        boundary = float(np.min(-coef_U[crossing] / coef_d[crossing])) if crossing.any() else np.inf
        steps = [1.0]
        if boundary < 1.0:
            steps.append(boundary)
        steps += [min(1.0, boundary) * 0.5**i for i in range(1, 20)]
        for step in steps:
            candidate = U + step * d
            coef_c = layout.coef(candidate)
            coef_c[coef_c * signs <= 0] = 0.0
            H_candidate = self.HU + self._hessp(candidate - U)
            value = self._model_value(candidate, H_candidate)
            if value < self.value:
                self.U, self.HU, self.value = candidate, H_candidate, value
                return step < 1.0
        return False

    def _grouped_search(self, d, Hd) -> bool:
        """Line search of a grouped subspace step; True if a column was set to zero.

        The analogue of the L1 sign change is a column whose line ``u_j + t d_j`` passes
        close to zero within the step: the Newton step of the smooth model then overshoots
        through the kink of ``||u_j||``. The search tries the full step, then the step to the
        first such closest approach with that column set to exactly zero, then halvings.
        """
        layout = self.layout
        U = self.U
        coef_U, coef_d = layout.coef(U), layout.coef(d)
        norms = np.sqrt((coef_U.astype(np.float64) ** 2).sum(axis=0))
        dd = (coef_d.astype(np.float64) ** 2).sum(axis=0)
        ud = (coef_U * coef_d).sum(axis=0, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            closest = np.where((norms > 0) & (dd > 0), -ud / dd, np.inf)
            distance = np.sqrt(np.maximum(norms**2 - ud**2 / dd, 0.0))
        crossing = (closest > 0) & (closest < 1) & (distance < 0.5 * norms)
        trials = [(1.0, None)]
        if crossing.any():
            boundary = float(closest[crossing].min())
            trials.append((boundary, crossing & (closest <= boundary * (1 + 1e-9))))
            trials += [(boundary * 0.5**i, None) for i in range(1, 8)]
        else:
            trials += [(0.5**i, None) for i in range(1, 8)]
        for step, zeroed in trials:
            candidate = U + step * d
            if zeroed is None:
                H_candidate = self.HU + step * Hd  # exact: the model is quadratic in U
            else:
                layout.coef(candidate)[:, zeroed] = 0.0
                H_candidate = self.HU + self._hessp(candidate - U)
            value = self._model_value(candidate, H_candidate)
            if value <= self.value:
                self.U, self.HU, self.value = candidate, H_candidate, value
                return zeroed is not None
        # A nearly flat direction (separable classes, no ridge) that no step along the line
        # can use: FISTA alone finishes this model.
        self.subspace_failed = True
        return False

    def _newton_step(self, free, signs, unit, inv_norms, target, max_steps):
        """Newton step ``d`` of the model restricted to ``free`` (and ``H d``)."""
        layout, lam = self.layout, self.layout.lam
        grouped = layout.name == "grouped"
        # Gradient of the smooth model on the support (the penalty is smooth there).
        residual = self.g + self.HU
        if grouped:
            layout.coef(residual)[...] += lam * unit
        else:
            layout.coef(residual)[...] += lam * signs
        residual = np.where(free, -residual, 0.0)
        if self.matrix is not None:
            return self._direct_step(
                residual, free, lam * inv_norms if grouped else None, unit if grouped else None
            )

        def operator(direction):
            full = self._hessp(direction)
            out = full.copy()
            if grouped:
                # Hessian of lam * ||u_j||: lam (I - u u^T / ||u||^2) / ||u||.
                coef_d = layout.coef(direction)
                along = (unit * coef_d).sum(axis=0)
                layout.coef(out)[...] += lam * inv_norms * (coef_d - unit * along)
            out[~free] = 0.0
            return out, full

        return self._cg_step(residual, free, operator, target, max_steps)

    def _cg_step(self, residual, free, operator, target, max_steps):
        """Preconditioned conjugate gradients for the Newton step on the support."""
        preconditioner = np.where(free, 1.0 / self.metric, 0.0)
        d = np.zeros_like(self.U)
        Hd = np.zeros_like(self.U)  # full Hessian (data part) times d
        r = residual
        z = preconditioner * r
        p = z
        rz = float(np.vdot(r, z))
        goal = 0.5 * target
        for _ in range(max_steps):
            Ap, Hp = operator(p)
            pAp = float(np.vdot(p, Ap))
            if not pAp > 1e-30 * max(float(np.vdot(p, p)), 1e-300):
                break  # no curvature left along p (a flat direction of the softmax)
            alpha = rz / pAp
            d += alpha * p
            Hd += alpha * Hp
            r = r - alpha * Ap
            if max_abs(r) <= goal:
                break
            z = preconditioner * r
            rz_next = float(np.vdot(r, z))
            p = z + (rz_next / rz) * p
            rz = rz_next
        return d, Hd

    def _direct_step(self, residual, free, group_scale, unit):
        """The Newton step on the support by a dense factorisation of the explicit Hessian."""
        shape = self.U.shape
        index = np.flatnonzero(free.ravel())
        A = self.matrix[np.ix_(index, index)].copy()
        if group_scale is not None:
            # Add lam (I - u u^T) / ||u|| over the K entries of every active column.
            K, p = shape
            position = np.full(K * p, -1)
            position[index] = np.arange(len(index))
            columns = np.flatnonzero(group_scale)
            rows = position[np.arange(K)[None, :] * p + columns[:, None]]  # [n_active, K]
            u = unit[:, columns].T.astype(np.float64)  # [n_active, K]
            blocks = group_scale[columns, None, None] * (
                np.eye(K)[None] - u[:, :, None] * u[:, None, :]
            )
            A[rows[:, :, None], rows[:, None, :]] += blocks
        rhs = residual.ravel()[index].astype(np.float64)
        # A small ridge keeps the factorisation defined along flat directions (the softmax is
        # invariant to adding one vector to every class); the line search judges the step.
        relative = max(1e-12, 10 * float(np.finfo(self.U.dtype).eps))
        jitter = relative * max(float(np.abs(np.diag(A)).max(initial=0.0)), 1e-300)
        A[np.diag_indices_from(A)] += jitter
        try:
            factor = scipy.linalg.cho_factor(A, check_finite=False)
            step = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            step = scipy.linalg.lstsq(A, rhs, cond=1e-12, check_finite=False)[0]
        if not np.all(np.isfinite(step)):
            return np.zeros(shape, self.U.dtype), np.zeros(shape, self.U.dtype)
        d = np.zeros(shape[0] * shape[1])
        d[index] = step
        self.n_products += 1
        Hd = (self.matrix[:, index] @ step).reshape(shape)
        return d.reshape(shape).astype(self.U.dtype), Hd.astype(self.U.dtype)

    def solve(self, target: float, max_products: int):
        """Alternate identification and subspace steps until the violation is below target.

        Also stops when a few rounds no longer lower the model (rounding, mostly in float32):
        the outer iteration then decides with the true objective.
        """
        stalled = 0
        while self.n_products < max_products and stalled < 3:
            before = self.value
            self.fista(target, max_products - self.n_products)
            if self.violation() <= target or self.n_products >= max_products:
                break
            # Active-set steps: each one that stops at a sign change zeroes an entry and
            # continues on the smaller support (cheap with an explicit Hessian).
            for _ in range(
                0 if self.subspace_failed else _ACTIVE_SET_STEPS if self.matrix is not None else 1
            ):
                hit = self.subspace(target, min(100, max_products - self.n_products))
                if not hit or self.violation() <= target:
                    break
            if self.violation() <= target:
                break
            # A round that gains less than 0.1% of the model's total decrease is crawling
            # along a flat direction (or rounding): three such rounds end the solve.
            gained = before - self.value
            total = -self.value
            scale = max(abs(before), abs(self.value), 1e-300)
            progress = gained > max(_STALL * total, 16 * np.finfo(self.P.dtype).eps * scale)
            stalled = 0 if progress else stalled + 1
        return self.U


def _explicit(objective, params) -> bool:
    """Whether to form the Hessian of this (restricted) in-memory problem.

    One Hessian costs ``n (K p)^2`` flops of matrix products; it makes the model's products
    nearly free and its subspace steps exact, which pays off on small, ill-conditioned
    problems (one-hot columns that sum to the intercept, nearly separable classes, more
    features than samples). A Hessian-vector product costs about ``4 K nnz(X)`` flops; the
    Hessian is formed when it costs at most ``_EXPLICIT_PRODUCTS`` such products (BLAS-3 runs
    several times faster per flop than the products' sparse or thin matrix products).
    """
    X = getattr(objective, "X", None)
    if not hasattr(objective, "hessian") or X is None or params.size > _EXPLICIT_MAX_PARAMS:
        return False
    n, K = X.shape[0], params.shape[0]
    nnz = X.nnz if sp.issparse(X) else X.size
    hessian_flops = n * float(params.size) ** 2
    product_flops = 4.0 * K * nnz + 10.0 * n * K
    return hessian_flops <= min(_EXPLICIT_MAX_FLOPS, _EXPLICIT_PRODUCTS * product_flops)


def _extrapolated(params, U, step, layout):
    """``params + step * (U - params)`` for ``step > 1``, keeping the zeros and signs of ``U``."""
    candidate = params + step * (U - params)
    coef_c, coef_U = layout.coef(candidate), layout.coef(U)
    if layout.name == "grouped":
        coef_c[:, ~np.any(coef_U != 0, axis=0)] = 0.0
    else:
        coef_c[coef_c * coef_U <= 0] = 0.0
    return candidate


def _line_search(objective, layout, params, value, U, decrease, predicted, violation, counters):
    """Step along ``U - params`` with sufficient decrease of ``F``.

    The unit step is tried first with the gradient and Hessian closure computed at once (it is
    accepted almost always). If ``F`` dropped much more than the model predicted (the loss
    flattens faster than its quadratic model, typical of confidently classified samples),
    longer steps are tried; if it did not drop enough, the step is halved (Armijo). When both
    the predicted and the actual change are below the rounding error of ``F`` (float32 near
    the optimum) the unit step is judged by the optimality violation instead.

    Returns ``(step, params, value, gradient, hessp)`` or None when no step decreases ``F``.
    """
    lam = layout.lam
    c_value, c_gradient, c_hessp = objective.loss_gradient_hessp(U)
    counters["passes"] += 1
    c_value += lam * layout.omega(U)
    dtype = params.dtype
    if (
        np.isfinite(c_value)
        and c_value > value + _ARMIJO * decrease
        and within_rounding(value, c_value, dtype)
        and within_rounding(value, value + predicted, dtype)
    ):
        if max_abs(layout.violation(U, c_gradient)) < violation:
            return 1.0, U, c_value, c_gradient, c_hessp
        return None
    if np.isfinite(c_value) and c_value <= value + _ARMIJO * decrease:
        if (c_value - value) / predicted <= _EXTRAPOLATE:
            return 1.0, U, c_value, c_gradient, c_hessp
        step, best, best_value = 1.0, U, c_value
        for _ in range(_MAX_EXTRAPOLATIONS):
            trial = _extrapolated(params, U, 2.0 * step, layout)
            trial_value = objective.loss(trial) + lam * layout.omega(trial)
            counters["passes"] += 0.5
            if not trial_value < best_value:
                break
            step, best, best_value = 2.0 * step, trial, trial_value
        if step == 1.0:
            return 1.0, U, c_value, c_gradient, c_hessp
        _, c_gradient, c_hessp = objective.loss_gradient_hessp(best)
        counters["passes"] += 1
        return step, best, best_value, c_gradient, c_hessp
    direction = U - params
    step = 1.0
    for _ in range(40):
        step *= 0.5
        candidate = params + step * direction
        c_value = objective.loss(candidate) + lam * layout.omega(candidate)
        counters["passes"] += 0.5
        if np.isfinite(c_value) and c_value <= value + _ARMIJO * step * decrease:
            _, c_gradient, c_hessp = objective.loss_gradient_hessp(candidate)
            counters["passes"] += 1
            return step, candidate, c_value, c_gradient, c_hessp
    return None


def _newton_solve(objective, params, tol, max_iter, layout, verbose, counters, columns=None):
    """Proximal Newton on one (restricted) objective until ``max |violation| <= tol``.

    The model's Hessian is damped, ``H + mu * I`` (Levenberg-Marquardt): when the model
    predicted badly (the line search had to cut the step) ``mu`` grows, when it predicted well
    ``mu`` shrinks geometrically, giving back Newton steps near the solution. On near-separable
    data (text) some coefficients have almost no curvature (every sample with that feature is
    already classified with probability ~1), so the undamped model moves them by thousands and
    the line search then cuts every coefficient's step along with theirs. A multiple of
    ``diag(H)`` would not help there; an absolute ``mu`` bounds such moves by ``|g| / mu``.

    ``columns`` are the indices of the objective's features among the full problem's
    (None: all of them), for the kept Hessian (``_HessianCache``).

    Returns the params, the value of ``F`` and the gradient of ``F_smooth`` there, and the
    number of Newton iterations.
    """
    if columns is None:
        n_features = params.shape[1] - int(layout.fit_intercept)
        columns = np.arange(n_features)
    value, gradient, hessp = objective.loss_gradient_hessp(params)
    counters["passes"] += 1
    value += layout.lam * layout.omega(params)
    # The damping and FISTA scale carry over between working sets and stages: the data, and so
    # the reliability of the quadratic model, are the same.
    lipschitz = counters["lipschitz"]
    damping = counters["damping"]
    n_iter = 0
    while n_iter < max_iter:
        violation = max_abs(layout.violation(params, gradient))
        if violation <= tol:
            break
        # At the precision limit the objective stops moving and the violation only jitters:
        # stop when neither has improved for a while (the result is then not converged).
        # Counted over all working sets of the solve; a real decrease of F resets it.
        moved = not within_rounding(counters["last_value"], value, np.float64)
        counters["last_value"] = value
        if violation < 0.99 * counters["best"] or moved:
            counters["best"] = min(counters["best"], violation)
            counters["since_best"] = 0
        else:
            counters["since_best"] += 1
            if counters["since_best"] > _NO_PROGRESS:
                break
        n_iter += 1
        matrix = None
        if _explicit(objective, params):
            # In float64 even for float32 data: a Hessian summed in float32 can lose its
            # positive semi-definiteness to cancellation.
            matrix = _HessianCache.of(objective).matrix(objective, params, columns, counters)
            diagonal = np.diag(matrix).reshape(params.shape)
        elif hasattr(hessp, "diagonal"):
            diagonal = hessp.diagonal()  # from the probabilities kept by the closure
        else:
            diagonal = objective.hessian_diagonal(params)
            counters["passes"] += 1
        metric = _metric(diagonal, layout)
        # The model's optimality cannot be resolved below the rounding error of its gradient.
        rounding = 32 * float(np.finfo(params.dtype).eps) * max_abs(gradient)
        target = max(_FORCING * violation, 0.5 * tol, rounding)
        model_hessp = hessp
        if damping > 0:
            if matrix is not None:
                matrix = matrix.copy()
                matrix[np.diag_indices_from(matrix)] += damping
            else:

                def model_hessp(direction, hessp=hessp, damping=damping):
                    return hessp(direction) + damping * direction

            metric = metric + damping
        if matrix is None:
            model = _Model(params, gradient, model_hessp, metric, layout, lipschitz)
            U = model.solve(target, _MAX_PRODUCTS)
        else:
            # Parameter-sized arithmetic is cheap: solve the explicit model in float64 even
            # for float32 data (in float32 its steps stall on rounding long before the target).
            model = _Model(
                params.astype(np.float64),
                gradient.astype(np.float64),
                None,
                metric,
                layout,
                lipschitz,
                matrix,
            )
            U = model.solve(target, _MAX_EXPLICIT_PRODUCTS).astype(params.dtype)
        counters["products"] += model.n_products
        lipschitz = max(model.lipschitz / 4.0, 1e-3)
        direction = U - params
        decrease = float(np.vdot(gradient, direction)) + layout.lam * layout.omega_change(params, U)
        predicted = model.value
        if not (decrease < 0 and predicted < 0):
            if matrix is not None and not counters["fresh"]:
                _HessianCache.of(objective).usable = False  # retry with a fresh Hessian
                continue
            break  # the model cannot improve at this precision
        searched = _line_search(
            objective, layout, params, value, U, decrease, predicted, violation, counters
        )
        if searched is None:
            if matrix is not None and not counters["fresh"]:
                _HessianCache.of(objective).usable = False
                continue
            if within_rounding(value, value + predicted, params.dtype):
                break  # the model's gain is below the objective's precision: nothing left
            # The model trusted a direction it has no curvature along (coefficients that only
            # a sample classified with probability ~1 uses, say) and ran off along it: damp
            # it so that such a coefficient moves about as far as its gradient warrants.
            damping = max(4.0 * damping, violation / max(max_abs(direction), 1e-12))
            continue
        step, candidate, c_value, c_gradient, c_hessp = searched
        ratio = (c_value - value) / predicted
        if within_rounding(value, c_value, params.dtype):
            ratio = 1.0  # below the objective's precision: the model is as good as we can tell
        if step < 1.0:
            # Enough damping that a coefficient with no curvature moves about as far as the
            # accepted step moved (its model step is at most |violation| / damping).
            moved = step * max_abs(direction)
            damping = max(4.0 * damping, violation / max(moved, 1e-12))
        elif ratio > 0.75:
            damping *= 0.1
        elif ratio < 0.25:
            damping *= 2.0
        if matrix is not None:
            # Keep the Hessian while the steps it gives contract the violation well.
            contraction = max_abs(layout.violation(candidate, c_gradient)) / violation
            _HessianCache.of(objective).usable = step == 1.0 and (
                contraction <= _STALE_CONTRACTION
            )
        params, value, gradient, hessp = candidate, c_value, c_gradient, c_hessp
        counters["newton"] += 1
        report(verbose, "prox-newton", counters["newton"], value, violation)
        if verbose > 1:
            print(
                f"    model: {model.n_products} products, step {step:g}, ratio {ratio:.3f}, "
                f"damping {damping:.3g}, L {model.lipschitz:g}, model violation "
                f"{model.violation():.2e} (target {target:.2e}), size {params.shape}"
            )
    counters["lipschitz"], counters["damping"] = lipschitz, damping
    return params, value, gradient, n_iter


# --------------------------------------------------------------------------- the solver
def _working_set_solve(objective, params, gradient, layout, tol, max_iter, verbose, counters):
    """Minimise ``F_smooth + layout.lam * Omega`` from ``params`` by working sets.

    ``gradient`` is the full gradient of ``F_smooth`` at ``params``. Returns the params, the
    full gradient there and the number of Newton iterations used.
    """
    fit_intercept = layout.fit_intercept
    n_features = params.shape[1] - int(fit_intercept)
    n_iter = 0
    working = np.zeros(0, dtype=np.intp)
    stalled = False
    while n_iter < max_iter and counters["since_best"] <= _NO_PROGRESS:
        violation = layout.violation(params, gradient)
        if max_abs(violation) <= tol:
            break
        support = np.flatnonzero(np.any(layout.coef(params) != 0, axis=0))
        scores = _column_scores(layout.coef(violation), layout.name)
        scores[support] = np.inf
        n_candidates = int(np.count_nonzero(scores > tol))
        # Celer's rule: twice the support, and at least twice the last set when the last
        # restricted solve could not move (so that the loop always terminates).
        size = max(_MIN_WORKING_SET, _GROWTH * len(support), 2 * len(working) * stalled)
        size = min(n_candidates, size)
        sub_objective = None
        if size < _RESTRICT_FRACTION * n_features:
            working = np.sort(np.argpartition(-scores, size - 1)[:size]) if size else support
            sub_objective = _restricted(objective, working)
        if sub_objective is None:
            params, _, gradient, used = _newton_solve(
                objective, params, tol, max_iter - n_iter, layout, verbose, counters
            )
            n_iter += used
            if used == 0:
                break  # no progress possible at this precision
            continue
        # Solve the restricted problem a little below the violation left outside it, so that
        # the next full check sees progress on both fronts (celer's inner tolerance rule).
        outside = scores.copy()
        outside[working] = 0.0
        inner_tol = max(tol, 0.3 * float(outside.max(initial=0.0)))
        sub_params = _sub_params(params, working, fit_intercept)
        sub_params, _, _, used = _newton_solve(
            sub_objective, sub_params, inner_tol, max_iter - n_iter, layout.restricted(working),
            verbose, counters, working,
        )
        n_iter += used
        stalled = used == 0
        _scatter(params, sub_params, working, fit_intercept)
        _, gradient = objective.loss_gradient(params)
        counters["passes"] += 1
    return params, gradient, n_iter


def stopping_threshold(tol: float, lam: float) -> float:
    """The violation at which ``prox_newton`` stops: ``tol``, and ``tol / 10`` relative to
    ``lam`` (with ``tol = 1e-5``, the KKT conditions hold to 1e-6 of the threshold).

    ``lam = 0`` (an elastic net with ``l1_ratio = 0``) is a smooth problem: ``tol`` alone.
    """
    if lam <= 0:
        return tol
    return tol * min(1.0, _RELATIVE * lam)


def prox_newton(objective, params0, tol=None, max_iter=1000, verbose=0) -> SolverResult:
    """Minimise ``F_smooth + lam * Omega`` by working-set proximal Newton.

    (Continuation, i.e. solving a decreasing sequence of thresholds from a cold start, was
    measured and rejected: it took 1.3-2x more Newton iterations on digits, covertype and
    20 Newsgroups than going straight to ``lam``. Along a path, warm starts play that role.)

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss_gradient``, ``loss_gradient_hessp``, ``hessian_diagonal``,
        ``nonsmooth_threshold``, ``penalty``, ``fit_intercept`` and ``dtype``.
    params0 : ndarray of shape (K, p)
        Starting point (intercept last when fitted); warm starts along a path.
    tol : float
        Stop when the largest absolute entry of the minimal-norm subgradient of ``F`` (the
        gradient for intercepts) is at most ``stopping_threshold(tol, lam)``. A fit that
        stops short of it because no step lowers ``F`` at the data's precision counts as
        converged when the violation is at most ``tol``.
    max_iter : int
        Maximum number of proximal Newton iterations, over all working sets and stages.
    verbose : int

    Returns
    -------
    SolverResult
        ``n_iter`` counts proximal Newton iterations; ``n_passes`` counts data passes
        (restricted passes count as one).
    """
    tol = 1e-5 if tol is None else tol  # the default: KKT within 1e-6 of the threshold
    name = (
        objective.penalty.name
        if objective.penalty.name in ("l1", "elasticnet", "grouped")
        else "l1"
    )
    lam = float(objective.nonsmooth_threshold)
    fit_intercept = bool(objective.fit_intercept)
    # The iterates are float64 even for float32 data (the products with X then run in
    # float64): near an L1 solution the line searches and the optimality measure need
    # differences far below float32's resolution of the objective, and float32 iterates
    # stall at a violation of about 1e-5 instead of reaching the tolerance.
    params = np.array(params0, dtype=np.float64)
    del params0  # the caller's start: not held through the fit (see _solvers)
    if fit_intercept:
        # Adding one number to every class's intercept changes nothing (unlike the penalised
        # coefficients, which the penalty pins down): report the representative with mean 0,
        # so that equivalent fits (weights vs repeated samples) give equal decision values.
        params[:, -1] -= params[:, -1].mean()
    threshold = stopping_threshold(tol, lam)
    original, (objective, means) = objective, _centred(objective)
    if means is not None:
        params[:, -1] += params[:, :-1] @ means  # the same model on the centred columns
    counters = {
        "passes": 0,
        "products": 0,
        "newton": 0,
        "lipschitz": 1.0,
        "damping": 0.0,
        "best": np.inf,
        "since_best": 0,
        "last_value": np.inf,
    }

    _, gradient = objective.loss_gradient(params)
    counters["passes"] += 1
    layout = _Layout(fit_intercept, name, lam, means)
    params, gradient, n_iter = _working_set_solve(
        objective, params, gradient, layout, threshold, max_iter, verbose, counters
    )
    gradient_norm = max_abs(layout.violation(params, gradient))
    value = objective.loss(params) + lam * layout.omega(params)
    if means is not None:
        params[:, -1] -= params[:, :-1] @ means  # back to the caller's columns
    if fit_intercept:
        params[:, -1] -= params[:, -1].mean()
    if verbose:
        print(
            f"[prox-newton] done: {n_iter} Newton iterations, "
            f"{counters['passes']:g} passes, {counters['products']} Hessian-vector products, "
            f"max|violation| {gradient_norm:.3e}"
        )
    return SolverResult(
        params=params.astype(original.dtype, copy=False),
        n_iter=n_iter,
        # Short of the threshold before max_iter: stopped at the data's precision.
        converged=gradient_norm <= threshold or (gradient_norm <= tol and n_iter < max_iter),
        gradient_norm=gradient_norm,
        objective=value,
        n_passes=float(counters["passes"] + 0.5),
    )
