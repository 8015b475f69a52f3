"""The objective that solvers minimise: the data fit of ``_loss`` plus a penalty of ``_penalties``.

Solvers work on the scaled objective

    F(params) = (1 / S) * sum_i s_i * (-log P(y_i | x_i)) + (1 / (C * S)) * R(W),    S = sum_i s_i

which has DESIGN.md's minimiser (``f = C * S * F``) and keeps gradients of order one whatever
``n`` and ``C`` are: the single convergence criterion of every solver is
``max |projected gradient of F| <= tol``.

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

# Bytes a parameter that newton-cg holds on sparse X while CG runs (its peak): the float64
# parameters, and in float32 CG's four vectors (its step, residual, direction and product)
# and the preconditioner's diagonal, plus the coarse space's feature basis; measured 7.75
# float32 arrays of [K, p] on 20 Newsgroups, rounded up to 8.
PARAMETER_BYTES = 32


_TRANSPOSE_ROWS = 1024  # rows of X per block of the transposing copy in float32_design


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

        Shares the caches that depend on the data only (the float32 copy of X, the feature
        second moment), so a path over many ``C`` computes them once.
        """
        other = copy.copy(self)
        other.C = float(C)
        other._set_scaling(self.X.shape[1])
        return other

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
        The random side should be the smaller one, which stays in cache. Measured (one
        thread), a float64 pass: 20 Newsgroups (56,439 columns, 11,314 rows) 110 -> 80 ms,
        a whole fit 2.50 -> 2.10 s; its 20,000 most frequent terms 80 -> 62 ms; the 5,000
        most frequent terms, the other way round, CSR 50 and CSC 48 ms, but float64 products
        on L1 working sets 4.0 ms (CSR) against 6.6 ms (CSC). The float32 copy of the
        products shares its index arrays (``float32_design``).

        The copy costs X once more, and a fit is to stay within twice X plus O(n K)
        (``_copy_fits``): on 20 Newsgroups, whose [K, p] arrays are large next to X, the copy
        made the peak 64.0 MiB against a bound of 46.3, without it 44.1 (a fit 2.0 -> 2.7 s,
        one thread).
        """
        X = self.X
        if not sp.issparse(X) or X.shape[1] <= X.shape[0] or not self._copy_fits(X):
            return X
        if getattr(self, "_pass_design", None) is None:
            self._pass_design = X.tocsc()
        return self._pass_design

    def _copy_fits(self, X) -> bool:
        """Whether a fit holding a copy of sparse X stays within twice X (beyond O(n K)).

        Held in either layout: the float32 values of the products (float64 X: 4 bytes a
        nonzero) and newton-cg's parameter-sized arrays (``PARAMETER_BYTES`` a parameter).
        With the copy, these and the copy (X's size) must fit in 2 X.
        """
        x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        float32_values = 4 * X.nnz if X.dtype == np.float64 else 0
        return float32_values + PARAMETER_BYTES * self.shape[0] * self.shape[1] <= x_bytes

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

    def single_precision_passes(self) -> bool:
        """Whether ``loss_gradient_hessp(params, single=True)`` runs in float32: float64
        NumPy X in memory (the pass then reads the float32 copy of the products)."""
        return isinstance(self.X, np.ndarray) and self.X.dtype == np.float64

    def loss_gradient_hessp(self, params, single: bool = False):
        """``F_smooth``, its gradient and its Hessian operator (a ``ScaledHessian``).

        ``single=True`` (where ``single_precision_passes``): the scores, probabilities and
        gradient in float32 on ``float32_design``, the loss summed in float64. The value
        then carries a relative error of about float32's eps times the scores' size and the
        gradient one of about eps times ``sqrt(n)``: enough far from an optimum, where a
        step lowers the objective by far more (see ``_solvers.newton_cg``). The gradient is
        returned in float64.
        """
        if single:
            return self._single_precision_pass(params)
        value, gradient, data_hessian = _loss.loss_gradient_hessp(
            *self._pass_args(), params, self.sample_weight, self.fit_intercept
        )
        value /= self.weight_sum
        gradient /= self.weight_sum
        value = self._add_ridge(value, gradient, params)
        return value, gradient, ScaledHessian(self, data_hessian)

    def _single_precision_pass(self, params):
        design, has_intercept_column = self.float32_design()
        fit_intercept = self.fit_intercept and not has_intercept_column
        # the loss's per-sample terms are summed in float64 (with float64 weights)
        value, gradient, proba = _loss._loss_gradient_proba(
            design, self.y, params.astype(np.float32), self.sample_weight, fit_intercept, True
        )
        value /= self.weight_sum
        gradient = np.multiply(gradient, 1.0 / self.weight_sum, dtype=np.float64)
        value = self._add_ridge(value, gradient, params)
        weights = None if self.sample_weight is None else self.sample_weight.astype(np.float32)
        data_hessian = _loss.HessianProduct(design, proba, weights, fit_intercept)
        return value, gradient, ScaledHessian(self, data_hessian)

    def loss_hessp(self, params):
        """``F_smooth`` and its Hessian operator at ``params``, without the gradient.

        Half a pass: the probabilities are kept, and ``gradient(params, hessp)`` forms the
        gradient from them later, if it is wanted (newton-cg on sparse X asks only once a
        step is accepted, so that the candidate's gradient is not held beside the current
        point's arrays; see ``_solvers.newton_cg``).
        """
        value, data_hessian = _loss.loss_hessp(
            *self._pass_args(), params, self.sample_weight, self.fit_intercept
        )
        return value / self.weight_sum + self._ridge_value(params), ScaledHessian(
            self, data_hessian
        )

    def gradient(self, params, hessp):
        """The gradient [K, p] of ``F_smooth`` at ``params``, from the probabilities that
        ``hessp`` (``loss_hessp``'s operator at ``params``) keeps: the rest of the pass."""
        gradient = _loss.gradient_from_proba(
            *self._pass_args(), hessp._data.proba, self.sample_weight, self.fit_intercept
        )
        gradient /= self.weight_sum
        self._add_ridge(0.0, gradient, params)
        return gradient

    @property
    def coarse_space_preconditioner(self):
        """For sparse X, a function from the operator to the two-level preconditioner of
        ``_sparse_preconditioner`` (Jacobi plus an exact coarse space); None otherwise."""
        if not sp.issparse(self.X):
            return None
        from ._solvers._sparse_preconditioner import coarse_space_preconditioner

        return lambda hessp: coarse_space_preconditioner(self, hessp)

    def float32_design(self):
        """The design the float32 Hessian-vector products run on, made once per fit.

        Returns ``(design, has_intercept_column)``:

        - dense X: ``[X, 1]`` [n, p] in float32 when the intercept is fitted (X alone
          otherwise), so that each product is two GEMMs with nothing else to add (the
          intercept's column sums and the copies that put them beside the coefficients cost
          a fifth of a small product); stored transposed, [p, n], where the passes are
          class-major (not split into row blocks);
        - sparse X: float32 values on the index arrays of ``pass_design`` (the CSC copy of
          wide X where it fits in memory, X's own CSR otherwise), so it adds 4 bytes a
          nonzero: the products then read X in the layout of the passes (20 Newsgroups, one
          thread: ``X V`` 10.9 -> 6.1 ms as CSC; its 5,000 most frequent terms: a product
          19.5 ms as CSC, 14.6 ms as CSR).
        """
        if getattr(self, "_float32_design", None) is None:
            X = self.X
            if sp.issparse(X):
                layout = self.pass_design()
                design = layout.__class__(
                    (layout.data.astype(np.float32), layout.indices, layout.indptr),
                    shape=layout.shape,
                )
                self._float32_design = (design, False)
            else:
                n, d = X.shape
                p = d + int(self.fit_intercept)
                if _loss._row_blocks(X, self.shape) is None:
                    # class-major passes: the products are V X^T and R X (see
                    # ``HessianProduct._class_major_product``), and OpenBLAS runs V X^T
                    # faster from X^T stored [p, n]; the design is the [n, p] view of it
                    design = np.empty((p, n), dtype=np.float32).T
                    # copied by blocks of rows: one transposing copy of the whole strides
                    # through memory (one thread: 50,000 x 54 11.4 -> 3.7 ms; 20,000 x 16
                    # 1.3 -> 0.5 ms; 100,000 x 100 46 -> 24 ms)
                    for start in range(0, n, _TRANSPOSE_ROWS):
                        rows = slice(start, start + _TRANSPOSE_ROWS)
                        design[rows, :d] = X[rows]
                else:
                    design = np.empty((n, p), dtype=np.float32)
                    design[:, :d] = X
                if self.fit_intercept:
                    design[:, d] = 1.0
                self._float32_design = (design, self.fit_intercept)
        return self._float32_design

    def feature_gram(self) -> np.ndarray:
        """``sum_i s_i x_i x_i^T / S`` [p, p] (augmented by the intercept), computed once."""
        if getattr(self, "_feature_gram", None) is None:
            gram = _loss.feature_gram(self.X, self.sample_weight, self.fit_intercept)
            self._feature_gram = gram / self.weight_sum
        return self._feature_gram

    def hessian(self, params, rows=None, row_weight=None) -> np.ndarray:
        """Full Hessian of ``F_smooth``, [K*p, K*p] in ``params.ravel()`` order.

        With ``rows`` (indices [m]) and ``row_weight`` [m], an estimate from those rows only:
        each sampled row's term is multiplied by its ``row_weight`` (the inverse of its
        inclusion probability makes the estimate unbiased). In-memory X only.
        """
        X, y = self._data_args()
        sample_weight = self.sample_weight
        if rows is not None:
            X, y = X[rows], y[rows]
            base = 1.0 if sample_weight is None else sample_weight[rows]
            sample_weight = (base * row_weight).astype(self.dtype, copy=False)
        H = _loss.hessian(X, y, params, sample_weight, self.fit_intercept)
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


class WholePassSplit:
    """``loss_hessp`` and ``gradient`` for objectives whose passes cannot stop at the
    probabilities (data on a Dask cluster or in another array library, whose operators keep
    their probabilities there): ``loss_hessp`` runs the whole pass and keeps its gradient on
    the operator, and ``gradient`` returns it. The results of ``SoftmaxObjective``'s split
    pass, without its memory saving (newton-cg splits passes only on SciPy sparse X)."""

    def loss_hessp(self, params):
        value, gradient, hessp = self.loss_gradient_hessp(params)
        hessp.kept_gradient = gradient
        return value, hessp

    def gradient(self, params, hessp):
        return hessp.kept_gradient


class ScaledHessian:
    """Hessian operator of ``F_smooth``: the data Hessian over ``S`` plus the ridge.

    Callable on a direction [K, p]; ``class_curvature`` [K, K] and ``diagonal`` [K, p] feed the
    preconditioners of the Newton-CG solver.
    """

    def __init__(self, objective: SoftmaxObjective, data_hessian):
        self._objective = objective
        self._data = data_hessian
        self._products = data_hessian  # the operator __call__ uses (see float32_products)
        self._scale = 1.0 / objective.weight_sum

    def float32_products(self) -> None:
        """Compute the products in float32 from here on (float64 X in memory).

        Newton-CG needs Hessian-vector products only to the accuracy of its inexact solves
        (a relative CG residual of 1e-1 to 1e-3), far above float32's 1e-7, while the
        gradient, which decides the optimum and the stopping test, stays float64. A sparse
        product streams X's values, indices and the dense operands; in float32 it moves about
        a third less memory (measured on 20 Newsgroups: 1.68 -> 1.32 s per fit, same optimum).
        A dense product runs two float32 GEMMs, twice as fast as float64 ones; whole fits,
        one thread, same Newton iterations and objective gaps: dense 100k x 100 0.88 ->
        0.66 s, wide 20k x 500 1.15 -> 0.91 s, covertype 0.78 -> 0.68 s, digits 37 -> 32 ms.
        The float32 copy of X is made once per fit (half the size of X; see
        ``SoftmaxObjective.float32_design``).
        """
        data = self._data
        design, has_intercept_column = self._objective.float32_design()
        if data.X is design:  # a float32 pass's operator: its products are float32 already
            return
        self._products = _loss.HessianProduct(
            design,
            data.proba.astype(np.float32),
            None if data.sample_weight is None else data.sample_weight.astype(np.float32),
            data.fit_intercept and not has_intercept_column,  # [X, 1]: a plain linear model
        )

    def __call__(self, direction):
        # scaled in place (or scaled and cast back in one pass), the ridge added in place: on
        # sparse X each pass over a [K, p] array costs about a millisecond, a thirtieth of
        # the product, and each temporary one is 9 MB on 20 Newsgroups
        product = self._products(direction)
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

    def curvature_gram(self, curvature=None):
        """Curvature-weighted feature second moment [p, p] and its total weight (from the
        float32 copy of X once products run in float32: a preconditioner needs no more);
        ``curvature`` [n] as in ``HessianProduct.curvature_gram``."""
        return self._products.curvature_gram(curvature)

    def class_block_rows(self, threshold: float) -> int:
        """Rows ``class_blocks(threshold)`` would use (``HessianProduct.class_block_rows``)."""
        return self._products.class_block_rows(threshold)

    def class_blocks(self, threshold: float = 0.0) -> tuple[np.ndarray, int]:
        """Within-class blocks of this Hessian [K, p, p], float64, ridge included, and the
        number of rows used (``HessianProduct.class_blocks``; from the float32 copy of X once
        products run in float32: a preconditioner needs no more)."""
        X = self._objective.X
        # float32 products on a stored-transposed copy: their rows gathered from X itself
        row_source = None
        if isinstance(X, np.ndarray) and X.flags.c_contiguous:
            row_source = (X, self._objective.fit_intercept)
        blocks, n_rows = self._products.class_blocks(threshold, row_source)
        blocks *= self._scale
        objective = self._objective
        if objective.l2_strength:
            coef = np.arange(blocks.shape[1] - int(objective.fit_intercept))
            blocks[:, coef, coef] += objective.l2_strength
        return blocks, n_rows

    def row_curvature(self) -> np.ndarray:
        """Curvature each sample carries, ``s_i sum_k p_ik (1 - p_ik)`` [n] (unscaled)."""
        return self._data.row_curvature()

    def diagonal(self) -> np.ndarray:
        diag = self._data.diagonal() * self._scale
        objective = self._objective
        if objective.l2_strength:
            objective._coef(diag)[...] += objective.l2_strength
        return diag
