"""Preconditioners for Newton-CG: ``solve`` applies ``M^{-1}``.

- ``DiagonalPreconditioner``: Jacobi, ``M = diag(H)``; works for any X (sparse, wide).
- ``KroneckerPreconditioner``: ``M = A kron G + ridge``, with ``A`` [K, K] the class curvature
  ``sum_i s_i (diag p_i - p_i p_i^T) / S`` and ``G`` [p, p] the feature second moment
  ``sum_i s_i x_i x_i^T / S``. It is exact when every sample has the same probabilities and
  captures both the coupling between classes and correlated features, which make CG slow.
  With the eigendecompositions ``A = U a U^T`` and ``G = V g V^T``, ``M^{-1}`` costs two small
  products: ``U [(U^T R V) / (a g^T + ridge)] V^T``.

Both return class-centred results: the data fit is flat along the class-constant direction,
and smooth optima are centred, so CG never needs that direction. For sparse X with more
columns than the Kronecker form factors, ``_sparse_preconditioner`` has the coarse-space
preconditioner. ``gauge_fixed`` makes newton-cholesky's full Hessian factorable.
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
        if residual.dtype == np.float32:  # float32 data: CG's vectors stay float32
            if getattr(self, "_single", None) is None:
                self._single = metric.astype(np.float32)
            metric = self._single
        return center_classes(residual / metric)


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

    def __init__(self, class_curvature, gram_eigen, ridge: float):
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


class ClassBlockPreconditioner:
    """``M = blockdiag_k(H_kk)``: the exact within-class blocks of the Hessian, applied to
    class-centred vectors. Keeps each sample's own curvature for each class, which the
    Kronecker form averages away, and drops only the coupling between classes.

    Each block is factored by Cholesky, ``H_kk = L_k L_k^T``, and ``L_k^{-1}`` is kept, so
    ``M^{-1} r = L^{-T} (L^{-1} r)`` is two batched products over all classes (one SciPy
    solve per class cost more than the product itself on small problems); the result is
    symmetric positive definite by construction, whatever the rounding of the inverses.

    Parameters
    ----------
    blocks : ndarray of shape (K, p, p)
        The blocks, ridge included (``ScaledHessian.class_blocks``).
    """

    def __init__(self, blocks: np.ndarray):
        import scipy.linalg

        K, p, _ = blocks.shape
        diagonal = np.arange(p)
        # a ridge relative to each block's largest entry: columns without curvature (constant
        # zero features, no penalty) would make a block singular
        floor = 1e-12 * np.maximum(blocks[:, diagonal, diagonal].max(axis=1), 1e-300)
        blocks = blocks.copy()
        blocks[:, diagonal, diagonal] += floor[:, None]
        identity = np.eye(p)
        self.inverse_factors = np.stack(  # [K, p, p], lower triangular
            [
                scipy.linalg.solve_triangular(factor, identity, lower=True, check_finite=False)
                for factor in np.linalg.cholesky(blocks)  # all K at once
            ]
        )

    def solve(self, residual: np.ndarray) -> np.ndarray:
        rows = residual.astype(np.float64)[:, :, None]
        half = np.matmul(self.inverse_factors, rows)
        result = np.matmul(self.inverse_factors.transpose(0, 2, 1), half)[:, :, 0]
        return center_classes(result).astype(residual.dtype, copy=False)
