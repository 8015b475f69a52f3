"""The explicit Hessian of the softmax data fit, by symmetric rank-k updates of class blocks.

The Hessian of the summed loss is ``H_kl = sum_i s_i (p_ik delta_kl - p_ik p_il) x_i x_i^T``
(``x_i`` with a trailing 1 for the intercept): every block is ``A^T A`` up to sign for
``A = sqrt(|w_kl|) X``, a symmetric rank-k update (BLAS ``syrk``) of ``n p^2`` flops. The
``K (K + 1) / 2`` distinct blocks cost ``K (K + 1) / 2 n p^2``, a quarter of forming the
Kronecker products' Gram matrix ``M^T M`` and the block diagonal by general products.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.blas as blas
import scipy.sparse as sp

from .. import _loss

_CHUNK_NUMBERS = 1 << 20  # numbers in one chunk of rows of [X, 1]


def block_hessian(X, params: np.ndarray, sample_weight=None, fit_intercept: bool = True):
    """Hessian of the summed (weighted) softmax loss at ``params``, in float64.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    params : ndarray of shape (K, p)
        Intercept last when ``fit_intercept``.
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool

    Returns
    -------
    ndarray of shape (K * p, K * p)
        Symmetric, rows ordered as ``params.ravel()``.
    """
    n = X.shape[0]
    K, p = params.shape
    params = np.asarray(params, dtype=np.float64)
    upper = np.zeros((K, K, p, p))
    chunk = max(1, min(n, _CHUNK_NUMBERS // p))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        X_chunk = X[start:stop]
        rows = X_chunk.toarray() if sp.issparse(X_chunk) else np.asarray(X_chunk)
        rows = rows.astype(np.float64, copy=False)
        if fit_intercept:
            rows = np.hstack([rows, np.ones((stop - start, 1))])
        proba = _loss.softmax(rows @ params.T)
        s = 1.0 if sample_weight is None else np.asarray(sample_weight[start:stop], np.float64)
        for k in range(K):
            for l in range(k, K):
                if k == l:
                    weight = s * proba[:, k] * (1.0 - proba[:, k])
                    sign = 1.0
                else:
                    weight = s * proba[:, k] * proba[:, l]
                    sign = -1.0
                scaled = rows * np.sqrt(weight)[:, None]
                # scaled.T is Fortran-ordered: syrk reads it without a copy (trans=0: A A^T)
                upper[k, l] += blas.dsyrk(sign, scaled.T, trans=0)
    H = np.empty((K * p, K * p))
    for k in range(K):
        for l in range(k, K):
            block = upper[k, l]
            block = np.triu(block) + np.triu(block, 1).T
            H[k * p : (k + 1) * p, l * p : (l + 1) * p] = block
            H[l * p : (l + 1) * p, k * p : (k + 1) * p] = block
    return H
