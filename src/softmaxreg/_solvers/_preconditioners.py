"""Preconditioners for Newton-CG: ``solve`` applies ``M^{-1}``, ``norm`` measures in ``M``.

- ``DiagonalPreconditioner``: Jacobi, ``M = diag(H)``; works for any X (sparse, wide).
- ``KroneckerPreconditioner``: ``M = A kron G + ridge``, with ``A`` [K, K] the class curvature
  ``sum_i s_i (diag p_i - p_i p_i^T) / S`` and ``G`` [p, p] the feature second moment
  ``sum_i s_i x_i x_i^T / S``. It is exact when every sample has the same probabilities and
  captures both the coupling between classes and correlated features, which make CG slow.
  With the eigendecompositions ``A = U a U^T`` and ``G = V g V^T``, ``M^{-1}`` costs two small
  products: ``U [(U^T R V) / (a g^T + ridge)] V^T``.

``ClassBlockPreconditioner``: ``M = blockdiag_k(H_kk)``, the exact within-class blocks (each
``X^T diag(s p_k (1 - p_k)) X`` plus the ridge, K Cholesky factors). It keeps what the
Kronecker form averages away, each sample's own curvature for each class, and drops only the
coupling between classes: near digits' optimum the preconditioned Hessian has condition number
7-8 against the Kronecker form's ~140 (and ~110 for per-class Grams in the eigenbasis of A).

``HessianPreconditioner`` factors the exact Hessian of an earlier iterate, or (for in-memory
dense X) an estimate from a curvature-weighted sample of rows (``sampled_hessian``).

All of them return class-centred results: the data fit is flat along the class-constant direction,
and smooth optima are centred, so CG never needs that direction.
"""

from __future__ import annotations

import numpy as np

from ._result import center_classes


class DiagonalPreconditioner:
    """Jacobi preconditioner from the Hessian diagonal [K, p]."""

    def __init__(self, diagonal: np.ndarray):
        floor = 1e-8 * max(float(diagonal.max()), 1e-30)
        self.metric = np.maximum(diagonal, floor)

    def solve(self, residual: np.ndarray) -> np.ndarray:
        metric = self.metric
        if residual.dtype == np.float32:  # float32 CG vectors (sparse X) stay float32
            if getattr(self, "_single", None) is None:
                self._single = metric.astype(np.float32)
            metric = self._single
        return center_classes(residual / metric)

    def norm(self, step: np.ndarray) -> float:
        return float(np.sqrt(np.sum(self.metric * step * step)))


class KroneckerPreconditioner:
    """``A kron G + ridge`` preconditioner (see the module docstring).

    Parameters
    ----------
    class_curvature : ndarray of shape (K, K)
    gram_eigen : tuple of (ndarray (p,), ndarray (p, p))
        Eigenvalues and eigenvectors of the feature second moment ``G``.
    ridge : float
        The L2 strength of the scaled objective (added to every eigenvalue product).
    """

    def __init__(self, class_curvature, gram_eigen, ridge: float, refreshed: bool = True):
        self.refreshed = refreshed  # whether G's eigendecomposition was computed for it
        class_values, self.class_vectors = np.linalg.eigh(class_curvature)
        gram_values, self.gram_vectors = gram_eigen
        denominator = np.outer(np.maximum(class_values, 0), np.maximum(gram_values, 0)) + ridge
        # floor relative to the largest curvature: directions flatter than that are left to
        # the trust region instead of producing huge preconditioned steps
        self.denominator = np.maximum(denominator, 1e-10 * float(denominator.max()))

    def _to_eigen(self, matrix):
        return self.class_vectors.T @ matrix @ self.gram_vectors

    def _from_eigen(self, matrix):
        return self.class_vectors @ matrix @ self.gram_vectors.T

    def solve(self, residual: np.ndarray) -> np.ndarray:
        rotated = self._to_eigen(residual.astype(np.float64, copy=False))
        return center_classes(self._from_eigen(rotated / self.denominator)).astype(residual.dtype)

    def norm(self, step: np.ndarray) -> float:
        rotated = self._to_eigen(step.astype(np.float64, copy=False))
        return float(np.sqrt(np.sum(self.denominator * rotated * rotated)))


def with_growing_ridge(factorise, relative: float, attempts: int = 3):
    """``factorise(relative)``, retried with a 1000-fold larger relative ridge while it raises
    ``LinAlgError`` (a Hessian formed from float32 data can be indefinite at a ridge sized
    for float64's rounding); the last failure propagates."""
    for _ in range(attempts - 1):
        try:
            return factorise(relative)
        except np.linalg.LinAlgError:
            relative *= 1e3
    return factorise(relative)


class ClassBlockPreconditioner:
    """``M = blockdiag_k(H_kk)``: the exact within-class blocks of the Hessian, applied to
    class-centred vectors (``solve`` returns ``P M^{-1} r``, ``P`` the centring).

    Parameters
    ----------
    blocks : ndarray of shape (K, p, p), float64
        The within-class blocks, ridge included (``ScaledHessian.class_blocks``); a small
        ridge is added to them in place.
    precision : float
        Relative rounding of the blocks (float32's eps when they come from float32 data):
        each diagonal entry is raised by 100 times it, 1000-fold more while a block is not
        factorable.
    """

    def __init__(self, blocks: np.ndarray, precision: float = np.finfo(np.float64).eps):
        import scipy.linalg.lapack as lapack
        from scipy.linalg import blas

        K, p, _ = blocks.shape
        self.blocks = blocks
        # Newton-CG's stopping test also asks for the residual to shrink in this metric:
        # near-exact preconditioners let ||r|| meet the forcing term after two or three steps
        # whose error in the flat directions is still large (digits: max|gradient| after the
        # Newton step 2.3e-2 where the exact step gives 2.1e-3; three steps with both tests)
        self.stop_in_metric = True
        diagonal = np.arange(p)
        # A ridge relative to each diagonal entry, so that badly scaled features (iris x 1e4)
        # keep the intercept's curvature, plus a tiny one relative to the largest entry for
        # columns with none (an all-zero feature left unpenalised)
        entries = blocks[:, diagonal, diagonal].copy()
        floor = 1e-12 * max(float(entries.max()), 1e-300)
        # Blocks from float32 data (newton-cg's, from the products' float32 copy of X) are
        # factored and applied in float32: they are no more accurate than that, and the
        # ridge (100 eps) is above float32 Cholesky's rounding. Measured on digits (10 blocks
        # of 65 x 65, one thread): factor and inverse 453 -> 365 us, a solve 22 -> 12 us;
        # a fit's Newton and CG steps unchanged (8 and 45).
        single = precision >= np.finfo(np.float32).eps
        dtype = np.float32 if single else np.float64
        potrf = lapack.spotrf if single else lapack.dpotrf
        trsm = blas.strsm if single else blas.dtrsm
        identity = np.eye(p, dtype=dtype, order="F")

        def invert(relative):
            blocks[:, diagonal, diagonal] = entries * (1 + relative) + floor
            inverses = np.empty(blocks.shape, dtype=dtype)
            for k, block in enumerate(blocks):
                factor, info = potrf(block.astype(dtype, copy=False), lower=1, clean=0)
                if info != 0:
                    raise np.linalg.LinAlgError(f"class block {k} is not positive definite")
                # L_k^{-1} by a triangular solve (LAPACK's trtri is slower at this size)
                inverses[k] = trsm(1.0, factor, identity, lower=1)
            return inverses

        # L_k^{-1}, so that H_kk^{-1} = L_k^{-T} L_k^{-1}
        self.inverse_factors = with_growing_ridge(invert, max(1e-10, 100 * precision))
        self._transposed = self.inverse_factors.transpose(0, 2, 1)

    def solve(self, residual: np.ndarray) -> np.ndarray:
        right = residual.astype(self.inverse_factors.dtype, copy=False)[:, :, None]
        solution = np.matmul(self._transposed, np.matmul(self.inverse_factors, right))[:, :, 0]
        return center_classes(solution).astype(residual.dtype, copy=False)

    def norm(self, step: np.ndarray) -> float:
        step = step.astype(np.float64, copy=False)
        return float(np.sqrt(max(np.einsum("ki,kij,kj->", step, self.blocks, step), 0.0)))


# The curvature-weighted feature factor is reused when the samples' curvature has moved by
# at most this fraction (L1, relative to its total) since the factor was computed. Computing
# it costs n p^2 (the Gram) plus an eigendecomposition of p x p, together about three
# Hessian-vector products on digits; a warm-started fit on a path moves the curvature little.
# Newton-CG reuses it only at a solve's first step, i.e. from the previous C of a path.
# Measured on digits' 5-fold CV over 9 C (one thread), reused at any step: recomputed every
# Newton step, 102 factors and 1006 products, 0.28 s; at 0.5, 28 and 987, 0.23 s; at 0.25,
# 46 and 997; never recomputed, 6 and 1091.
FEATURE_FACTOR_REFRESH = 0.5


def weighted_feature_factor(objective, hessp, reuse: bool = True):
    """Eigendecomposition of the curvature-weighted feature second moment ``G_c`` and the
    total curvature, for ``KroneckerPreconditioner`` (``A / total kron G_c``).

    Cached on the objective and reused while the samples' curvature ``c_i`` stays within
    ``FEATURE_FACTOR_REFRESH`` of the one it was computed from; ``SoftmaxObjective.with_C``
    copies the cache, so the fits of a path share it (``G_c`` does not depend on C).
    ``reuse=False`` recomputes it in any case.

    Returns
    -------
    gram_eigen : tuple of (ndarray (p,), ndarray (p, p))
    total : float
    refreshed : bool
        Whether this call computed it.
    """
    curvature = hessp.row_curvature()
    cached = getattr(objective, "_feature_factor", None)
    if (
        reuse
        and cached is not None
        and cached["X"] is objective.X
        and np.abs(curvature - cached["curvature"]).sum()
        <= FEATURE_FACTOR_REFRESH * cached["curvature"].sum()
    ):
        return cached["eigen"], cached["total"], False
    gram, total = hessp.curvature_gram(curvature)
    objective._feature_factor = {
        "X": objective.X,
        "curvature": curvature,
        "eigen": np.linalg.eigh(gram),
        "total": total,
    }
    return objective._feature_factor["eigen"], total, True


class HessianPreconditioner:
    """The exact Hessian at some earlier iterate, Cholesky-factored.

    Used when the Kronecker preconditioner leaves CG with many steps and ``K * p`` is small
    enough to form the Hessian (``O(n (K p)^2)``, BLAS-3); it stays a good preconditioner for
    several Newton steps, so it is refreshed only when CG slows down again.
    """

    def __init__(self, hessian: np.ndarray, shape: tuple[int, int]):
        import scipy.linalg

        self.shape = shape
        # A ridge relative to the largest diagonal entry keeps the factorisation of an
        # (almost) singular Hessian stable. It must exceed the Hessian's own rounding: one
        # computed from float32 data is indefinite at 1e-12 (iris scaled by 1e4 in float32:
        # LinAlgError at the 14th minor). Raised 1000-fold while Cholesky still fails.
        self.hessian = hessian.astype(np.float64, copy=False)
        scale = float(np.abs(np.diag(self.hessian)).max())

        def factor(relative):
            matrix = gauge_fixed(self.hessian, shape)
            matrix[np.diag_indices_from(matrix)] += relative * scale
            return scipy.linalg.cho_factor(matrix, lower=False, check_finite=False)

        self.factor = with_growing_ridge(
            factor, max(1e-12, 100 * float(np.finfo(hessian.dtype).eps))
        )

    def solve(self, residual: np.ndarray) -> np.ndarray:
        import scipy.linalg

        solution = scipy.linalg.cho_solve(
            self.factor, residual.astype(np.float64).ravel(), check_finite=False
        )
        return center_classes(solution.reshape(self.shape)).astype(residual.dtype)

    def norm(self, step: np.ndarray) -> float:
        flat = step.astype(np.float64).ravel()
        return float(np.sqrt(max(flat @ self.hessian @ flat, 0.0) + 1e-300))


def gauge_fixed(hessian: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``H + c (1 1^T / K) kron I_p``: the data Hessian is singular along 'the same vector
    added to every class's row'; gradients are orthogonal to that direction, so a Newton
    step is unchanged elsewhere and zero along it. Returns a new matrix."""
    K, p = shape
    scale = max(float(np.abs(np.diag(hessian)).max()), 1e-12)
    fixed = hessian.reshape(K, p, K, p).copy()
    idx = np.arange(p)
    fixed[:, idx, :, idx] += scale / K
    return fixed.reshape(K * p, K * p)


def curvature_sample(importance: np.ndarray, n_rows: int, rng: np.random.Generator):
    """Poisson sample of about ``n_rows`` rows, each kept with probability ``pi_i``
    proportional to its ``importance`` (capped at 1), for an unbiased Hessian estimate.

    Rows whose importance is large enough are always kept (``pi_i = 1``); the remaining
    expected count is spread over the others in proportion to their importance. A floor of
    1e-6 of the mean importance keeps every ``pi_i`` positive, so the estimate stays unbiased.

    Parameters
    ----------
    importance : ndarray of shape (n,), nonnegative
    n_rows : int
        Expected number of rows kept (``< n``).
    rng : numpy.random.Generator

    Returns
    -------
    rows : ndarray of shape (m,), sorted indices of the kept rows
    row_weight : ndarray of shape (m,), ``1 / pi_i`` of the kept rows
    """
    importance = np.maximum(np.asarray(importance, dtype=np.float64), 0.0)
    importance += 1e-6 * max(float(importance.mean()), 1e-300)
    capped = np.zeros(importance.shape, dtype=bool)
    # water-filling: a few rounds fix which rows are capped at probability one
    for _ in range(8):
        scale = (n_rows - capped.sum()) / importance[~capped].sum()
        newly = ~capped & (scale * importance >= 1.0)
        if not newly.any():
            break
        capped |= newly
    probability = np.where(capped, 1.0, np.minimum(1.0, scale * importance))
    rows = np.flatnonzero(rng.random(importance.size) < probability)
    return rows, 1.0 / probability[rows]


def sampled_hessian(objective, params, hessp, n_rows: int, row_norms_squared, rng):
    """Hessian of ``F_smooth`` estimated from a curvature-weighted sample of rows.

    Sample ``i`` contributes ``s_i A_i kron x_i x_i^T`` with ``A_i = diag(p_i) - p_i p_i^T``,
    whose size is about ``trace(A_i) (1 + ||x_i||^2)``: rows the model already classifies
    confidently carry almost none and are rarely drawn, while the rows near decision
    boundaries, and those of rare one-hot categories that make the problem ill-conditioned,
    are kept with weight one. Sub-sampled Newton (Roosta-Khorasani & Mahoney 2019) shows a
    few times ``K * p`` such rows give a Hessian within a small factor of the exact one, which
    is what a preconditioner needs; building it costs ``n_rows / n`` of the exact Hessian.

    Parameters
    ----------
    objective : SoftmaxObjective on in-memory NumPy X
    params : ndarray of shape (K, p)
    hessp : ScaledHessian at ``params`` (provides ``row_curvature``)
    n_rows : int
    row_norms_squared : ndarray of shape (n,), ``||x_i||^2`` (intercept column included)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (K * p, K * p)
    """
    rows, row_weight = curvature_sample(hessp.row_curvature() * row_norms_squared, n_rows, rng)
    return objective.hessian(params, rows, row_weight)
