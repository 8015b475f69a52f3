"""The objective that solvers minimise: the data fit of ``_loss`` plus a penalty of ``_penalties``.

Solvers work on the scaled objective

    F(params) = (1 / S) * sum_i s_i * (-log P(y_i | x_i)) + (1 / (C * S)) * R(W),    S = sum_i s_i

which has DESIGN.md's minimiser (``f = C * S * F``) and keeps gradients of order one whatever
``n`` and ``C`` are. The smooth solvers' stopping rule is relative to ``F``
(``_solvers._stopping``).

An objective exposes the smooth part ``F_smooth`` (data fit plus the ridge part of the
penalty) through ``loss_gradient``, ``loss_gradient_hessp``, ``hessian`` and
``hessian_diagonal``, and the non-smooth part through ``nonsmooth_threshold`` (the factor of
``Omega`` in ``F``). Solvers only use this protocol; the Dask backend implements the same one.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from . import _loss
from ._penalties import Penalty, omega

# Bytes a parameter that newton-cg holds on sparse X at its peak: about twelve float64
# arrays of [K, p] (the iterate and its gradient, the candidate and its gradient, CG's
# vectors, the preconditioner's), as tracemalloc shows on wide sparse problems.
PARAMETER_BYTES = 96


class SoftmaxObjective:
    """Scaled softmax objective on in-memory data (NumPy or CSR).

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y : ndarray of shape (n,), integer codes ``0..K-1``
    n_classes : int
    sample_weight : ndarray of shape (n,) or None
        Total weights ``s_i``; None means all ones.
    fit_intercept : bool
    C : float
        Inverse regularisation strength.
    penalty : Penalty
    """

    def __init__(self, X, y, n_classes, sample_weight, fit_intercept, C, penalty: Penalty):
        self.X = X
        self.y = y
        self.n_classes = int(n_classes)
        self.sample_weight = sample_weight
        self.fit_intercept = bool(fit_intercept)
        self.C = float(C)
        self.penalty = penalty
        self.dtype = self._data_dtype(X)
        self.weight_sum = self._total_weight(X, sample_weight)
        self._set_scaling(X.shape[1])

    def with_C(self, C: float) -> SoftmaxObjective:
        """The same data and penalty at another ``C``.

        Shares the caches that depend on the data only (the feature second moment, the CSC
        copy of wide sparse X, the coarse space's basis), so a path over many ``C`` computes
        them once.
        """
        other = copy.copy(self)
        other.C = float(C)
        other._set_scaling(self.X.shape[1])
        return other

    def in_float64(self) -> SoftmaxObjective | None:
        """The same objective on a float64 copy of in-memory float32 X (None for other
        data): where float32 passes cannot resolve the optimum, solvers finish there."""
        if type(self) is not SoftmaxObjective or self.dtype != np.float32:
            return None
        weights = None if self.sample_weight is None else self.sample_weight.astype(np.float64)
        return SoftmaxObjective(
            self.X.astype(np.float64),
            self.y,
            self.n_classes,
            weights,
            self.fit_intercept,
            self.C,
            self.penalty,
        )

    # hooks for objectives on other array types (``_array_api``)
    @staticmethod
    def _data_dtype(X) -> np.dtype:
        return X.dtype

    @staticmethod
    def _total_weight(X, sample_weight) -> float:
        return float(X.shape[0] if sample_weight is None else sample_weight.sum())

    def _set_scaling(self, n_features: int) -> None:
        """The penalty strengths of the scaled objective and the parameter shape [K, p]."""
        alpha = 1.0 / (self.C * self.weight_sum)
        self.l2_strength = alpha * self.penalty.smooth_strength
        self.nonsmooth_threshold = alpha * self.penalty.nonsmooth_strength
        self.shape = (self.n_classes, n_features + int(self.fit_intercept))

    # ------------------------------------------------------------------ helpers
    def _coef(self, params):
        return params[:, :-1] if self.fit_intercept else params

    def _add_ridge(self, value, gradient, params):
        """``value`` plus the ridge, whose gradient is added to ``gradient`` in place."""
        if self.l2_strength:
            # in place, with no [K, p] temporary where both share a layout (sparse problems'
            # Fortran-ordered arrays; the temporary was the peak of a wide fit's pass)
            _loss.axpy(self.l2_strength, self._coef(params), self._coef(gradient))
        return value + self._ridge_value(params)

    def _data_args(self):
        return self.X, self.y

    def _pass_args(self):
        """``(X, y)`` for the loss+gradient passes and the Hessian-vector products."""
        return self.pass_design(), self.y

    def pass_design(self):
        """X as the passes read it: X itself, except wide sparse X (more columns than rows),
        which is read from a CSC copy made once per fit where the memory allows it.

        SciPy's CSR kernels gather rows of the [d, K] operand (``X W^T``) or scatter into the
        [d, K] result (``X^T R``) at random; its CSC kernels do the same on the [n, K] side.
        The random side should be the smaller one, which stays in cache (the timings are in
        benchmarks/RESULTS.md). The copy costs X once more, and a fit is to stay within
        twice X plus O(n K) (``_copy_fits``).
        """
        X = self.X
        if not sp.issparse(X) or X.shape[1] <= X.shape[0] or not self._copy_fits(X):
            return X
        if getattr(self, "_pass_design", None) is None:
            self._pass_design = X.tocsc()
        return self._pass_design

    def _copy_fits(self, X) -> bool:
        """Whether a fit holding a copy of sparse X stays within twice X (beyond O(n K)):
        the copy (X's size) and newton-cg's parameter-sized arrays (``PARAMETER_BYTES`` a
        parameter) must fit in 2 X."""
        x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        return PARAMETER_BYTES * self.shape[0] * self.shape[1] <= x_bytes

    # ------------------------------------------------------------------ protocol
    def initial_params(self) -> np.ndarray:
        """Zero coefficients; intercepts at the log of the weighted class frequencies."""
        params = np.zeros(self.shape, dtype=self.dtype)
        if self.fit_intercept:
            counts = np.bincount(self.y, weights=self.sample_weight, minlength=self.n_classes)
            log_freq = np.log(np.maximum(counts / counts.sum(), 1e-12))
            params[:, -1] = log_freq - log_freq.mean()
        return params

    def loss_gradient(self, params):
        """``F_smooth`` and its gradient [K, p] at ``params`` [K, p]."""
        value, gradient = _loss.loss_gradient(
            *self._pass_args(), params, self.sample_weight, self.fit_intercept
        )
        value /= self.weight_sum
        gradient /= self.weight_sum
        return self._add_ridge(value, gradient, params), gradient

    def loss(self, params) -> float:
        """``F_smooth`` at ``params``."""
        value = _loss.loss(*self._pass_args(), params, self.sample_weight, self.fit_intercept)
        return value / self.weight_sum + self._ridge_value(params)

    def loss_gradient_hessp(self, params):
        """``F_smooth``, its gradient and its Hessian operator (a ``ScaledHessian``)."""
        value, gradient, data_hessian = _loss.loss_gradient_hessp(
            *self._pass_args(), params, self.sample_weight, self.fit_intercept
        )
        value /= self.weight_sum
        gradient /= self.weight_sum
        value = self._add_ridge(value, gradient, params)
        return value, gradient, ScaledHessian(self, data_hessian)

    @property
    def coarse_space_preconditioner(self):
        """For sparse X, a function from the operator to the two-level preconditioner of
        ``_sparse_preconditioner`` (Jacobi plus an exact coarse space); None otherwise."""
        if not sp.issparse(self.X):
            return None
        from ._solvers._sparse_preconditioner import coarse_space_preconditioner

        return lambda hessp: coarse_space_preconditioner(self, hessp)

    def feature_gram(self) -> np.ndarray:
        """``sum_i s_i x_i x_i^T / S`` [p, p] (augmented by the intercept), computed once."""
        if getattr(self, "_feature_gram", None) is None:
            gram = _loss.feature_gram(self.X, self.sample_weight, self.fit_intercept)
            self._feature_gram = gram / self.weight_sum
        return self._feature_gram

    def hessian(self, params) -> np.ndarray:
        """Full Hessian of ``F_smooth``, [K*p, K*p] in ``params.ravel()`` order."""
        X, y = self._data_args()
        H = _loss.hessian(X, y, params, self.sample_weight, self.fit_intercept)
        return self._scaled_hessian(H)

    def _scaled_hessian(self, data_hessian: np.ndarray) -> np.ndarray:
        """``data_hessian / S`` plus the ridge on the coefficients' diagonal (in place)."""
        data_hessian /= self.weight_sum
        if self.l2_strength:
            ridge = np.zeros(self.shape, dtype=data_hessian.dtype)
            self._coef(ridge)[...] = self.l2_strength
            data_hessian[np.diag_indices_from(data_hessian)] += ridge.ravel()
        return data_hessian

    def hessian_diagonal(self, params) -> np.ndarray:
        """Diagonal of the Hessian of ``F_smooth``, [K, p]."""
        diag = _loss.hessian_diagonal(
            *self._data_args(), params, self.sample_weight, self.fit_intercept
        )
        diag /= self.weight_sum
        if self.l2_strength:
            self._coef(diag)[...] += self.l2_strength
        return diag

    def nonsmooth_value(self, params) -> float:
        """``nonsmooth_threshold * Omega(W)``."""
        if not self.nonsmooth_threshold:
            return 0.0
        return self.nonsmooth_threshold * omega(self._coef(params), self.penalty.name)

    def _ridge_value(self, params) -> float:
        """``l2_strength * ||W||^2 / 2``."""
        if not self.l2_strength:
            return 0.0
        coef = self._coef(params)
        return 0.5 * self.l2_strength * _loss.inner(coef, coef)

    def penalty_value(self, params) -> float:
        """The penalty's part of ``F`` (ridge and non-smooth parts), without a data pass."""
        return self._ridge_value(params) + self.nonsmooth_value(params)

    def value(self, params) -> float:
        """The full scaled objective ``F``."""
        return self.loss(params) + self.nonsmooth_value(params)

    def unscaled(self, scaled_value: float) -> float:
        """DESIGN.md's ``f = C * S * F``."""
        return scaled_value * self.C * self.weight_sum


class ScaledHessian:
    """Hessian operator of ``F_smooth``: the data Hessian over ``S`` plus the ridge.

    Callable on a direction [K, p]; ``class_curvature`` [K, K] and ``diagonal`` [K, p] feed the
    preconditioners of the Newton-CG solver.
    """

    def __init__(self, objective: SoftmaxObjective, data_hessian):
        self._objective = objective
        self._data = data_hessian
        self._scale = 1.0 / objective.weight_sum

    def __call__(self, direction):
        # scaled in place (or scaled and cast back in one pass), the ridge added in place: on
        # sparse X each pass over a [K, p] array costs about a millisecond, a thirtieth of
        # the product, and each temporary one is 9 MB on 20 Newsgroups
        product = self._data(direction)
        if product.dtype == direction.dtype:
            product *= self._scale
        else:
            product = np.multiply(product, self._scale, dtype=direction.dtype)
        objective = self._objective
        if objective.l2_strength:
            _loss.axpy(objective.l2_strength, objective._coef(direction), objective._coef(product))
        return product

    def class_curvature(self) -> np.ndarray:
        return self._data.class_curvature() * self._scale

    def __getattr__(self, name):
        # ``class_blocks`` only where the data operator can form them (in-memory X)
        if name == "class_blocks" and hasattr(self.__dict__.get("_data"), "class_blocks"):
            return self._class_blocks
        raise AttributeError(name)

    def _class_blocks(self) -> np.ndarray:
        """Within-class blocks of this Hessian [K, p, p], the ridge included."""
        blocks = self._data.class_blocks() * self._scale
        objective = self._objective
        if objective.l2_strength:
            coef = np.arange(blocks.shape[1] - int(objective.fit_intercept))
            blocks[:, coef, coef] += objective.l2_strength
        return blocks

    def diagonal(self) -> np.ndarray:
        diag = self._data.diagonal() * self._scale
        objective = self._objective
        if objective.l2_strength:
            objective._coef(diag)[...] += objective.l2_strength
        return diag
