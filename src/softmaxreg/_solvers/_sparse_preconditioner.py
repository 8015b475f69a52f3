"""Two-level preconditioner for Newton-CG on sparse X: Jacobi plus an exact coarse space.

Why not Jacobi alone. On sparse text problems (TF-IDF: nonnegative rows of unit length) the
Jacobi-scaled Hessian has a cluster of about ``K - 1`` large eigenvalues, measured 13 to 19 on
20 Newsgroups against a bulk in [0.1, 3]. They live in "class direction kron (intercept and
the leading right singular vector of X)": nonnegative rows all lean towards the mean document,
so that feature direction is strongly coupled with the intercept, which a diagonal cannot see.
Jacobi CG spends 13 to 27 Hessian products per Newton step on them. Class coupling within a
feature, by contrast, does not matter: exact per-feature ``K x K`` blocks needed as many steps.

The coarse space is ``Q = U kron F``:

- ``U`` [K, K-1]: an orthonormal basis of class-centred vectors (iterates stay centred);
- ``F`` [p, m]: the intercept and the top ``rank`` right singular vectors of X, found once per
  fit by a randomized range finder (Halko, Martinsson & Tropp 2011) and cached on the
  objective together with the scores ``Z = [X, 1] F`` [n, m].

The Hessian restricted to it, ``E = Q^T H Q`` [(K-1) m, (K-1) m], is formed exactly from
``Z`` and the probabilities in ``O(n (K m)^2)``, no pass over X. With the Jacobi diagonal
``D`` and ``G = Q^T D Q``, the preconditioner is

    N = M^{-1} = D^{-1} + Q (E^{-1} - G^{-1}) Q^T,     M = D + D Q (G^{-1} E G^{-1} - G^{-1}) Q^T D

(Woodbury): in the D-inner product it is exact on span Q and Jacobi on the complement, and it
is positive definite whenever ``E`` and ``D`` are. This is a deflation-type coarse correction
(Nicolaides 1987; Frangella, Tropp & Udell 2021 use a Nystrom sketch of the whole Hessian
instead, which here would need hundreds of Hessian products, one per sketch column). On
20 Newsgroups, with ``rank = 4``, CG needs 3 to 9 products where Jacobi needs 13 to 27.

The diagonal is computed in float32 from X's values squared a chunk at a time
(``_loss.squared_design_product``): no squared copy of X is held through the fit.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._loss import squared_design_product
from ._result import class_mean

COARSE_RANK = 4  # singular vectors of X in the coarse space (plus the intercept)
# One power iteration: a second one, or four more test vectors, changed the CG steps of a
# 20 Newsgroups fit by one or two in sixty (measured), for twice the cost of the basis.
_OVERSAMPLE = 4
_POWER_ITERATIONS = 1
# Rows (samples or features) per chunk where an [rows, m^2] or [rows, (K-1) m] temporary is
# formed: whole, they would be up to 25 n numbers, five n x K arrays.
ROW_CHUNK = 8192


class CoarseBasis:
    """Feature basis of the coarse space, computed once per fit.

    Parameters
    ----------
    X : CSR or CSC matrix of shape (n, d)
    fit_intercept : bool
    rank : int
        Number of leading right singular vectors of X to include.
    seed : int
        Seed of the range finder's Gaussian test matrix (fits are reproducible).

    Attributes
    ----------
    features : ndarray of shape (p, m), float64, Fortran order (for the in-place BLAS update)
        ``F``: orthonormal columns, the singular vectors (zero in the intercept slot) and,
        when the intercept is fitted, the intercept's unit vector.
    scores : ndarray of shape (n, m), float64
        ``Z = [X, 1] F``.
    ridge_gram : ndarray of shape (m, m)
        ``F_W^T F_W`` over the coefficient rows only (the intercept is not penalised).
    design : CSR or CSC matrix of shape (n, d)
        The X the basis was computed on, whose squared values give the Hessian diagonal
        (``sparse_diagonal``).
    """

    def __init__(self, X, fit_intercept: bool, rank: int = COARSE_RANK, seed: int = 0):
        n, d = X.shape
        vectors = _top_right_singular_vectors(X, min(rank, min(n, d) - 1), seed)
        r = vectors.shape[1]
        m = r + int(fit_intercept)
        features = np.zeros((d + int(fit_intercept), m))
        features[:d, :r] = vectors
        scores = np.empty((n, m))
        scores[:, :r] = X @ vectors.astype(X.dtype)
        if fit_intercept:
            features[d, r] = 1.0
            scores[:, r] = 1.0
        self.features = np.asfortranarray(features)
        self.scores = scores
        self.ridge_gram = features[:d].T @ features[:d]
        self.design = X

    @classmethod
    def of(cls, objective) -> CoarseBasis:
        """The basis of ``objective.X``, cached on the objective (X does not change in a fit).

        Computed on the layout the passes read (``SoftmaxObjective.pass_design``: a CSC
        copy of wide X where it fits in memory, X itself otherwise).
        """
        cached = getattr(objective, "_coarse_basis", None)
        if cached is None or cached[0] is not objective.X:
            cached = (objective.X, cls(objective.pass_design(), objective.fit_intercept))
            objective._coarse_basis = cached
        return cached[1]


def _top_right_singular_vectors(X, rank: int, seed: int) -> np.ndarray:
    """Approximate leading right singular vectors [d, rank] of sparse X (randomized SVD).

    A few power iterations suffice: the coarse space only has to contain the dominant
    directions, not resolve them to high accuracy.
    """
    if rank <= 0:
        return np.zeros((X.shape[1], 0))
    width = min(rank + _OVERSAMPLE, min(X.shape))
    # [d, width] arrays are let go as soon as they are used, and the tall QR overwrites its
    # input: with few classes they are as large as the parameters (d x 8 against K x d), and
    # with p >> n this was the peak of a fit (K=10: 4.8 [K, p] arrays)
    test = np.random.default_rng(seed).standard_normal((X.shape[1], width))
    sample = np.asarray(X @ test.astype(X.dtype, copy=False))
    del test
    for _ in range(_POWER_ITERATIONS):
        sample = np.linalg.qr(sample)[0]
        sample = np.asarray(X @ np.asarray(X.T @ sample))
    range_basis = np.linalg.qr(sample)[0]
    del sample
    # X^T Q = V S W^T: the left factor holds the right singular vectors of X; a QR first
    # leaves a small SVD (the tall one costs more than the sparse products here)
    tall, triangle = scipy.linalg.qr(
        np.asarray(X.T @ range_basis, dtype=np.float64, order="F"),
        mode="economic",
        overwrite_a=True,
        check_finite=False,
    )
    return tall @ np.linalg.svd(triangle)[0][:, :rank]


def _row_outer_products(matrix: np.ndarray) -> np.ndarray:
    """``[a_i a_i^T for each row a_i]`` of a [r, m] matrix, flattened to [r, m * m]."""
    r, m = matrix.shape
    return (matrix[:, :, None] * matrix[:, None, :]).reshape(r, m * m)


def _weighted_feature_grams(weights: np.ndarray, features: np.ndarray):
    """``F^T diag(w_k) F`` [K, m, m] for every row ``w_k`` of ``weights`` [K, p].

    One matrix product with the row-wise outer products of F, by row chunks: holding them
    all would cost ``p m^2`` numbers (11 MB on 20 Newsgroups) for the whole fit. Used for
    the feature basis (rows of F: features) and for the scores (rows: samples).
    """
    K, p = weights.shape
    m = features.shape[1]
    grams = np.zeros((K, m * m))
    for start in range(0, p, ROW_CHUNK):
        grams += weights[:, start : start + ROW_CHUNK] @ _row_outer_products(
            features[start : start + ROW_CHUNK]
        )
    return grams.reshape(K, m, m)


def _centred_class_basis(n_classes: int) -> np.ndarray:
    """Orthonormal basis [K, K-1] of the vectors whose entries sum to zero."""
    centring = np.eye(n_classes) - 1.0 / n_classes
    return np.linalg.qr(centring[:, : n_classes - 1])[0]


class CoarseSpacePreconditioner:
    """``D^{-1} + Q (E^{-1} - G^{-1}) Q^T`` (see the module docstring).

    Parameters
    ----------
    diagonal : ndarray of shape (K, p)
        Hessian diagonal of the scaled objective.
    proba : ndarray of shape (n, K)
        Probabilities at the current iterate.
    sample_weight : ndarray of shape (n,) or None
    weight_sum : float
        ``S``, the scale of the data Hessian.
    l2_strength : float
        Ridge of the scaled objective on the coefficients.
    basis : CoarseBasis
    """

    def __init__(self, diagonal, proba, sample_weight, weight_sum, l2_strength, basis):
        K = proba.shape[1]
        floor = 1e-8 * max(float(diagonal.max()), 1e-30)
        # float32: a diagonal only scales the preconditioner, and a float64 copy held
        # through the fit would be one more [K, p] array (float64 residuals are divided by
        # it in float64)
        self.metric = diagonal.astype(np.float32, copy=False)
        np.maximum(self.metric, np.float32(floor), out=self.metric)
        self.features = basis.features
        self.class_basis = _centred_class_basis(K)
        m = self.features.shape[1]
        hessian = _subspace_hessian(proba, sample_weight, basis, self.class_basis)
        hessian /= weight_sum
        hessian += l2_strength * np.kron(np.eye(K - 1), basis.ridge_gram)
        # G = Q^T D Q: per class F^T D_k F, then mixed by U kron I
        class_grams = _weighted_feature_grams(self.metric, self.features)
        diag_gram = _mix_classes(self.class_basis, class_grams)
        self._shape = (K - 1, m)
        self._hessian_factor = _factor(hessian)
        self._diag_factor = _factor(diag_gram)

    def _restrict(self, matrix: np.ndarray) -> np.ndarray:
        """``Q^T vec(matrix)`` for a [K, p] matrix, flattened [(K-1) m] (float64)."""
        features = self._in_dtype(matrix.dtype)[1]
        return (self.class_basis.T @ (matrix @ features).astype(np.float64)).ravel()

    def _in_dtype(self, dtype):
        """``(metric, features)`` in ``dtype`` (float32 residuals stay float32: on wide
        sparse X every pass over a [K, p] array counts)."""
        if dtype == np.float64 or dtype.kind != "f":
            return self.metric, self.features
        if getattr(self, "_single", None) is None or self._single[0].dtype != dtype:
            self._single = (
                self.metric.astype(dtype, copy=False),
                self.features.astype(dtype, order="F"),
            )
        return self._single

    def solve(self, residual: np.ndarray) -> np.ndarray:
        r = residual if residual.dtype.kind == "f" else residual.astype(np.float64)
        metric, features = self._in_dtype(r.dtype)
        step = r / metric
        step -= class_mean(step)  # centred, as the data fit is flat along the class mean
        if not step.size or not self._shape[0] * self._shape[1]:
            return step.astype(residual.dtype, copy=False)
        coarse = self._restrict(r)
        correction = scipy.linalg.cho_solve(
            self._hessian_factor, coarse, check_finite=False
        ) - scipy.linalg.cho_solve(self._diag_factor, coarse, check_finite=False)
        # step += (U c) F^T in place: one BLAS call instead of a temporary [K, p] array
        # (BLAS updates Fortran-ordered matrices in place, so a C-ordered step goes
        # transposed; the returned array is the updated step either way)
        class_part = (self.class_basis @ correction.reshape(self._shape)).astype(step.dtype)
        gemm = scipy.linalg.get_blas_funcs("gemm", (step,))
        if step.flags.f_contiguous:
            step = gemm(1.0, class_part, features, beta=1.0, c=step, overwrite_c=True, trans_b=True)
        else:
            step = gemm(
                1.0, features, class_part, beta=1.0, c=step.T, overwrite_c=True, trans_b=True
            ).T
        return step.astype(residual.dtype, copy=False)


def _factor(matrix: np.ndarray):
    """Cholesky factor of a small symmetric positive (semi)definite matrix.

    A relative ridge keeps it stable when the probabilities saturate (the data Hessian of a
    separable problem tends to zero along some directions), a larger one if that fails.
    """
    scale = max(float(np.abs(np.diag(matrix)).max(initial=0.0)), 1e-300)
    for jitter in (1e-12, 1e-8, 1e-4):
        try:
            ridged = matrix + jitter * scale * np.eye(matrix.shape[0])
            return scipy.linalg.cho_factor(ridged, check_finite=False)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("coarse-space matrix is not positive definite")


def _mix_classes(class_basis: np.ndarray, class_grams: np.ndarray) -> np.ndarray:
    """``(U kron I)^T blockdiag_k(B_k) (U kron I)`` [(K-1) m, (K-1) m] from ``B`` [K, m, m]."""
    K, m, _ = class_grams.shape
    c = class_basis.shape[1]
    # entry (c a, e b) = sum_k U_kc U_ke B_k[a, b]: one matrix product over k
    pairs = (class_basis[:, :, None] * class_basis[:, None, :]).reshape(K, c * c)
    mixed = (pairs.T @ class_grams.reshape(K, m * m)).reshape(c, c, m, m)
    return mixed.transpose(0, 2, 1, 3).reshape(c * m, c * m)


def _subspace_hessian(proba, sample_weight, basis: CoarseBasis, class_basis) -> np.ndarray:
    """``(U kron I)^T [sum_i s_i (diag p_i - p_i p_i^T) kron z_i z_i^T] (U kron I)``.

    Parameters
    ----------
    proba : ndarray of shape (n, K)
    sample_weight : ndarray of shape (n,) or None
    basis : CoarseBasis
        Its ``scores`` ``z_i`` [n, m] are the samples in the coarse feature basis.
    class_basis : ndarray of shape (K, K-1)

    Returns
    -------
    ndarray of shape ((K-1) m, (K-1) m), index ``c * m + a``.
    """
    proba = proba.astype(np.float64, copy=False)
    scores = basis.scores
    n = scores.shape[0]
    weighted = proba if sample_weight is None else proba * sample_weight[:, None]
    # diag(p_i) part: sum_k (u_k u_k^T) kron (Z^T diag(s p_k) Z)
    class_grams = _weighted_feature_grams(weighted.T, scores)
    hessian = _mix_classes(class_basis, class_grams)
    size = hessian.shape[0]
    # p_i p_i^T part: T^T T with T_i = sqrt(s_i) (U^T p_i) kron z_i, by row chunks: T is
    # [n, (K-1) m], about m = 5 times an n x K array
    projected = proba @ class_basis
    if sample_weight is not None:
        projected *= np.sqrt(sample_weight)[:, None]
    for start in range(0, n, ROW_CHUNK):
        block = projected[start : start + ROW_CHUNK]
        rows = (block[:, :, None] * scores[start : start + ROW_CHUNK, None, :]).reshape(-1, size)
        hessian -= rows.T @ rows
    return hessian


def sparse_diagonal(proba, sample_weight, basis: CoarseBasis, fit_intercept: bool):
    """Diagonal of the summed data Hessian [K, p]: ``sum_i s_i p_ik (1 - p_ik) x_ij^2``.

    The same quantity as ``HessianProduct.diagonal``, in float32 (the diagonal only scales
    the preconditioner, and the product costs half of float64's) and in Fortran order, the
    layout of newton-cg's arrays on sparse X.
    """
    weights = proba * (1 - proba)
    if sample_weight is not None:
        weights *= sample_weight[:, None]
    return squared_design_product(basis.design, weights.astype(np.float32), fit_intercept)


def coarse_space_preconditioner(objective, hessp) -> CoarseSpacePreconditioner:
    """Build the preconditioner at the point of ``hessp`` (a ``ScaledHessian`` of CSR X)."""
    basis = CoarseBasis.of(objective)
    data = hessp._data  # the _loss.HessianProduct: its probabilities feed both parts
    diagonal = sparse_diagonal(data.proba, data.sample_weight, basis, objective.fit_intercept)
    diagonal /= objective.weight_sum
    if objective.l2_strength:
        objective._coef(diagonal)[...] += objective.l2_strength
    return CoarseSpacePreconditioner(
        diagonal,
        data.proba,
        data.sample_weight,
        objective.weight_sum,
        objective.l2_strength,
        basis,
    )
