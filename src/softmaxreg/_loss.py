"""Multinomial cross-entropy: pure functions of the parameters and the data.

Notation (shapes in brackets):

- ``X`` [n, d]: dense ``ndarray`` or ``scipy.sparse`` CSR matrix, never densified.
- ``y`` [n]: integer class codes ``0..K-1``.
- ``sample_weight`` [n]: the total per-sample weight ``s_i`` (sample weight times class weight).
- ``params`` [K, p]: the coefficient matrix ``W`` [K, d], followed, when ``fit_intercept``, by the
  intercept as the last column (``p = d + 1``); otherwise ``p = d``.

Every function returns the *weighted sum* ``sum_i s_i * (-log P(y_i | x_i))`` (and its
derivatives), not the mean: the caller scales. All arithmetic stays in the dtype of ``X``
(float32 or float64). Log-softmax is max-shifted, so scores of 1e4 stay finite.

The Hessian of the sum is

    H = sum_i s_i * (diag(p_i) - p_i p_i^T) kron (x_i x_i^T)

with ``x_i`` augmented by a 1 when the intercept is fitted. Its product with a direction ``V``
[K, p] is ``R^T X`` with ``R_ik = s_i p_ik (z_ik - sum_l p_il z_il)``, ``z = X V^T``: two matrix
products, no Python loop over samples or class pairs. On dense X whose passes are not split
into row blocks, both are computed class-major (``V X^T`` [K, n], then ``R^T`` X), and the
probabilities a pass keeps are the [n, K] view of a [K, n] array (``_pass_loss_and_proba``).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._threads import blas_controllers

__all__ = [
    "log_softmax",
    "softmax",
    "split_params",
    "raw_prediction",
    "linear_scores",
    "loss",
    "loss_gradient",
    "loss_gradient_hessp",
    "squared_design_product",
    "hessian",
    "hessian_diagonal",
    "HessianProduct",
    "feature_gram",
]


# NumPy reduces along the short last axis of an [n, K] array slowly (for n=5e4, K=7:
# max 2.0 ms, sum 0.9 ms, where an elementwise pass takes 0.07 ms); these do it at memory speed.
_COLUMN_LOOP_MAX_CLASSES = 32


def _row_max(scores: np.ndarray) -> np.ndarray:
    """``scores.max(axis=1)`` [n] (NaN propagates the same way)."""
    if scores.shape[1] > _COLUMN_LOOP_MAX_CLASSES or scores.shape[1] == 0:
        return scores.max(axis=1)
    row_max = scores[:, 0].copy()
    for k in range(1, scores.shape[1]):
        np.maximum(row_max, scores[:, k], out=row_max)
    return row_max


def _row_sum(values: np.ndarray) -> np.ndarray:
    """``values.sum(axis=1)`` [n] as a matrix-vector product (only K terms per row)."""
    return values @ np.ones(values.shape[1], dtype=values.dtype)


def log_softmax(raw_prediction: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, max-shifted.

    Parameters
    ----------
    raw_prediction : ndarray of shape (n, K)

    Returns
    -------
    ndarray of shape (n, K): ``log P``, finite for any finite input.
    """
    if not isinstance(raw_prediction, np.ndarray):
        return _xp_log_softmax(raw_prediction)
    shifted = raw_prediction - raw_prediction.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(raw_prediction: np.ndarray) -> np.ndarray:
    """Row-wise softmax, max-shifted: rows lie in [0, 1] and sum to 1.

    Parameters
    ----------
    raw_prediction : ndarray of shape (n, K)

    Returns
    -------
    ndarray of shape (n, K)
    """
    if not isinstance(raw_prediction, np.ndarray):
        return _xp_softmax(raw_prediction)
    proba = raw_prediction - _row_max(raw_prediction)[:, None]
    np.exp(proba, out=proba)
    proba /= _row_sum(proba)[:, None]
    return proba


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` of two arrays of one shape, without copying Fortran-ordered ones.

    ``np.vdot`` flattens in C order, which copies a Fortran-ordered or sliced array (sparse
    problems keep [K, p] arrays in Fortran order; on 20 Newsgroups a copy costs a
    millisecond). Two arrays with the same contiguous layout are flattened as views.
    """
    if a.flags.c_contiguous and b.flags.c_contiguous:
        return float(np.dot(a.ravel(), b.ravel()))
    if a.flags.f_contiguous and b.flags.f_contiguous:
        return float(np.dot(a.T.ravel(), b.T.ravel()))
    return float(np.einsum("ij,ij->", a, b)) if a.ndim == 2 else float(np.vdot(a, b))


def axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """``y += alpha * x`` in place: one BLAS call on the flat views when both arrays share a
    contiguous layout (NumPy would make a temporary the size of the parameters, 9 MB on
    20 Newsgroups, and read it back)."""
    same_layout = (x.flags.c_contiguous and y.flags.c_contiguous) or (
        x.flags.f_contiguous and y.flags.f_contiguous
    )
    if not same_layout or x.dtype != y.dtype or x.dtype.kind != "f" or x.size == 0:
        y += alpha * x  # (BLAS rejects empty vectors: a model of one feature-less class)
        return
    flat_y = y.ravel(order="K")  # a view, in memory order
    blas_axpy = scipy.linalg.get_blas_funcs("axpy", (flat_y,))
    blas_axpy(x.ravel(order="K"), flat_y, a=alpha)


def split_params(params: np.ndarray, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """View ``params`` [K, p] as ``(coef [K, d], intercept [K] or None)`` without copying."""
    if fit_intercept:
        return params[:, :-1], params[:, -1]
    return params, None


def raw_prediction(X, params: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Linear scores ``X W^T + b``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    params : ndarray of shape (K, p)
    fit_intercept : bool

    Returns
    -------
    ndarray of shape (n, K), C-contiguous, in the dtype of ``X``.
    """
    coef, intercept = split_params(params, fit_intercept)
    raw = np.asarray(X @ coef.T)
    if intercept is not None:
        raw += intercept
    return np.ascontiguousarray(raw)


def linear_scores(X, coef: np.ndarray, intercept: np.ndarray | None) -> np.ndarray:
    """Scores ``X coef^T + intercept`` [n, K] for separate ``coef`` [K, d] and ``intercept`` [K]."""
    if not _is_host(X):
        return _xp_linear_scores(X, coef, intercept)
    raw = np.asarray(X @ coef.T)
    if intercept is not None:
        raw = raw + intercept
    return np.ascontiguousarray(raw)


def prediction_scores(X, coef: np.ndarray, intercept: np.ndarray, *, shifted: bool = False):
    """``linear_scores`` [n, K] for prediction, never NaN for finite input.

    Rows whose plain scores are not finite (features or coefficients near 1e308 overflow the
    product to inf, and inf - inf gives NaN) are recomputed from the row scaled by its
    largest entry and the coefficients by theirs: ``z = (x / s_x) (W / s_w)^T + b / (s_x s_w)``
    is finite, and the scores are ``s_x (s_w z)``, finite or the infinity of the right sign.
    With ``shifted`` those rows are first shifted by their maximum (``z - max z``, the scores
    then <= 0, 0 at the most probable class), which leaves softmax, log-softmax and argmax
    as they are: probabilities come out finite and correct (1 for the class whose score
    overflows highest). A class with an intercept of -inf (absent from a fold of
    ``SoftmaxRegressionCV``) keeps its score of -inf without a recomputation. Array API
    input (PyTorch, CuPy) is computed on its device; only when a score there is not finite
    does the whole prediction go through the host, which repairs it.

    Parameters
    ----------
    X : {ndarray, sparse matrix, array API array} of shape (n, d), finite
    coef : ndarray of shape (K, d)
    intercept : ndarray of shape (K,)
    shifted : bool

    Returns
    -------
    ndarray of shape (n, K)
    """
    if not _is_host(X):
        scores = linear_scores(X, coef, intercept)
        xp = _namespace(scores)
        if bool(xp.isfinite(xp.sum(scores))):
            return scores
        # rare: the whole prediction on the host, where the rows are repaired, and back
        host = prediction_scores(to_host(X), to_host(coef), to_host(intercept), shifted=shifted)
        return to_device(host, scores)
    with np.errstate(over="ignore", invalid="ignore"):
        scores = linear_scores(X, coef, intercept)
        if np.isfinite(scores.sum()):  # one pass: a NaN or an infinity reaches the sum
            return scores
    expected = np.isfinite(scores) | ~np.isfinite(intercept)
    bad = np.flatnonzero(~np.all(expected, axis=1))
    if bad.size == 0:
        return scores
    rows = X[bad]
    if sp.issparse(rows):
        x_scale = np.asarray(abs(rows).max(axis=1).todense()).ravel()
    else:
        x_scale = np.max(np.abs(rows), axis=1)
    x_scale = np.maximum(x_scale, 1.0).astype(scores.dtype)
    w_scale = scores.dtype.type(max(1.0, float(np.max(np.abs(coef)))))
    scaled = sp.diags(1.0 / x_scale) @ rows if sp.issparse(rows) else rows / x_scale[:, None]
    z = np.asarray(scaled @ (coef / w_scale).T) + intercept / w_scale / x_scale[:, None]
    if shifted:
        z = z - z.max(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # an overflow to +-inf is the right limit here
        scores[bad] = x_scale[:, None] * (w_scale * z)
    return scores


def _loss_and_proba(raw: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None):
    """Weighted summed cross-entropy and the probabilities, from the scores (overwrites ``raw``)."""
    n = raw.shape[0]
    max_raw = _row_max(raw)[:, None]
    raw -= max_raw
    raw_true = raw[np.arange(n), y]
    np.exp(raw, out=raw)
    sum_exp = _row_sum(raw)
    raw /= sum_exp[:, None]  # now the probabilities
    return _weighted_total(np.log(sum_exp) - raw_true, sample_weight), raw


def _weighted_total(per_sample: np.ndarray, sample_weight: np.ndarray | None) -> float:
    """``sum_i s_i per_sample_i`` (plain sum, in float64, without weights)."""
    if sample_weight is None:
        return float(per_sample.sum(dtype=np.float64))
    return float(np.dot(per_sample, sample_weight))


def _label_positions(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Flat positions ``y_i * n + i`` [n] of the labels' entries in a C-ordered class-major
    [K, n] array: a flat gather or scatter there costs a fifth of the same
    two-index one (1,797 x 10: 3 against 15 us)."""
    positions = np.multiply(y, n_samples, dtype=np.intp)  # K n may pass 2**31
    positions += np.arange(n_samples)
    return positions


def _class_major_loss_and_proba(scores: np.ndarray, y: np.ndarray, sample_weight):
    """``_loss_and_proba`` on class-major scores [K, n] (overwritten by the probabilities)."""
    scores -= scores.max(axis=0)
    scores_true = scores.ravel().take(_label_positions(y, scores.shape[1]))
    np.exp(scores, out=scores)
    sum_exp = scores.sum(axis=0)
    scores /= sum_exp  # now the probabilities
    return _weighted_total(np.log(sum_exp) - scores_true, sample_weight), scores


def _is_class_major(X, proba: np.ndarray) -> bool:
    """Whether ``proba`` [n, K] is the transpose of a class-major [K, n] array over dense X
    (what ``_pass_loss_and_proba`` returns there)."""
    return isinstance(X, np.ndarray) and proba.T.flags.c_contiguous


def _pass_loss_and_proba(X, y, params, sample_weight, fit_intercept: bool):
    """Loss and probabilities [n, K] at ``params``: the first half of every pass.

    On dense NumPy X the scores are computed class-major, ``W X^T`` [K, n], and the returned
    probabilities are the [n, K] transpose of that array (a view). OpenBLAS runs ``W X^T``
    faster than ``X W^T`` on these shapes (few classes against many rows), and the softmax's
    reductions over classes become elementwise operations on K contiguous rows of n numbers
    instead of reductions along rows of K. Sparse X stays row-major (its products gather
    or scatter rows of K numbers).
    """
    if isinstance(X, np.ndarray):
        coef, intercept = split_params(params, fit_intercept)
        scores = coef @ X.T
        if intercept is not None:
            scores += intercept[:, None]
        value, proba = _class_major_loss_and_proba(scores, y, sample_weight)
        return value, proba.T
    return _loss_and_proba(raw_prediction(X, params, fit_intercept), y, sample_weight)


def loss(X, y, params, sample_weight=None, fit_intercept=True) -> float:
    """Weighted summed cross-entropy ``sum_i s_i * (-log P(y_i | x_i))``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y : ndarray of shape (n,), integer codes in ``0..K-1``
    params : ndarray of shape (K, p)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool

    Returns
    -------
    float
    """
    if not _is_host(X):
        return _xp_loss_and_proba(X, y, params, sample_weight, fit_intercept)[0]
    value, _ = _pass_loss_and_proba(X, y, params, sample_weight, fit_intercept)
    return value


def _numpy_blas_threads() -> int:
    """Threads NumPy's BLAS uses now (a C call, about a microsecond; follows
    ``threadpoolctl.threadpool_limits`` and the limits of ``_threads.fit_threads``)."""
    numpy_blas, _ = blas_controllers()
    return max((controller.num_threads for controller in numpy_blas), default=1)


# Numbers in one row block of an [n, width] intermediate: 2**15 float64 = 256 KB, which stays
# in a core's L2 cache between the products and the elementwise steps.
_BLOCK_NUMBERS = 1 << 15
_MIN_BLOCK_ROWS = 256
# Row blocks pay only on large problems: X too large to stay in cache between the two
# products of a pass, or [n, K] intermediates too large for it. Measured with one thread
# (Hessian-vector product; loss+gradient pass), whole-matrix -> blocked: float64 100k x 100,
# K=10 35.0 -> 28.9 ms; 39.8 -> 37.9 ms; float64 50k x 50, K=100 61.5 -> 38.2; 71.2 -> 49.1;
# but float64 12k x 54, K=7 1.15 -> 1.32; 1.51 -> 2.02 and float32 100k x 100, K=10
# 14.7 -> 14.9; 18.5 -> 23.8.
_BLOCK_MIN_X_BYTES = 1 << 26  # 64 MiB
_BLOCK_MIN_SCORES_BYTES = 1 << 23  # 8 MiB


def _row_blocks(X, shape: tuple[int, int]) -> list[slice] | None:
    """Row blocks for cache-sized passes over dense X with parameters of ``shape`` [K, p], or
    None for one whole-matrix pass (sparse or non-NumPy X, several BLAS threads, or a
    problem small enough for the caches)."""
    if not isinstance(X, np.ndarray) or _numpy_blas_threads() != 1:
        return None
    n = X.shape[0]
    if X.nbytes <= _BLOCK_MIN_X_BYTES and n * shape[0] * X.itemsize <= _BLOCK_MIN_SCORES_BYTES:
        return None
    rows = max(_MIN_BLOCK_ROWS, _BLOCK_NUMBERS // max(1, max(shape)))
    if rows >= n:
        return None
    return [slice(start, min(n, start + rows)) for start in range(0, n, rows)]


# Rows of X per call of ``transposed_product``: about 2**19 multiply-adds. With one thread,
# OpenBLAS runs R^T X (a long inner dimension n) faster as a sum of such row chunks than as
# one call; the chunking changes only the speed, never the result beyond rounding.
_PRODUCT_CHUNK_MULTIPLY_ADDS = 1 << 19


def transposed_product(residual: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``residual^T X`` [K, d] for dense ``residual`` [n, K] and ``X`` [n, d], summed over
    row chunks of about ``_PRODUCT_CHUNK_MULTIPLY_ADDS`` (see there); C-contiguous."""
    n, d = X.shape
    rows = max(1, _PRODUCT_CHUNK_MULTIPLY_ADDS // max(1, d * residual.shape[1]))
    if rows >= n:
        return residual.T @ X
    total = residual[:rows].T @ X[:rows]
    part = np.empty_like(total)
    for start in range(rows, n, rows):
        stop = start + rows
        np.matmul(residual[start:stop].T, X[start:stop], out=part)
        total += part
    return total


def _residual_to_gradient(
    X, residual: np.ndarray, fit_intercept: bool, pairwise: bool = True, one_thread=None
) -> np.ndarray:
    """``residual^T [X, 1]`` [K, p] for a residual [n, K]; sparse X stays sparse.

    ``pairwise=False`` lets a float32 residual's column sums run as one matrix-vector
    product (an error growing with n, fine for Hessian-vector products) instead of NumPy's
    pairwise sums over short rows, which cost as much as the rest of a small product."""
    if sp.issparse(X) and fit_intercept:
        # the gradient [K, p] in Fortran order is a C-ordered [p, K] buffer whose first d
        # rows take X^T R directly: no [d, K] result beside the gradient (the peak of a
        # wide sparse fit's pass) and no copy of it
        K, d = residual.shape[1], X.shape[1]
        buffer = np.zeros((d + 1, K), dtype=residual.dtype)
        if _sparse_transpose_product_into(X, residual, buffer[:-1]):
            grad = buffer.T
            grad[:, -1] = _column_sums(residual, pairwise)
            return grad
        del buffer
    if one_thread is None:  # the caller may know (asking costs microseconds a call)
        one_thread = isinstance(X, np.ndarray) and _numpy_blas_threads() == 1
    if isinstance(X, np.ndarray) and one_thread:
        # One thread: OpenBLAS's R^T X (the long reduction inside each dot product) runs
        # about twice as fast as X^T R (measured 2.4 vs 4.7 ms for n=5e4, d=54, K=7).
        grad_coef = transposed_product(residual, X)
    else:
        # Several threads: (X^T R)^T, not R^T X, which OpenBLAS splits badly over threads
        # (measured 380 ms vs 80 ms for n=1e5, d=100, K=10).
        grad_coef = np.asarray(X.T @ residual).T
    # Sparse X: (X^T R)^T is a Fortran-ordered [K, d] view, and so is the gradient (a
    # transposing copy of K x d costs a third of a sparse product; see newton-cg's layout)
    order = "F" if sp.issparse(X) else "C"
    if not fit_intercept:
        return np.asarray(grad_coef, order=order)
    K, d = grad_coef.shape
    grad = np.empty((K, d + 1), dtype=residual.dtype, order=order)
    grad[:, :-1] = grad_coef
    grad[:, -1] = _column_sums(residual, pairwise)
    return grad


def _column_sums(residual: np.ndarray, pairwise: bool) -> np.ndarray:
    """``1^T residual`` [K]: the intercept's part of ``residual^T [X, 1]``."""
    if residual.dtype == np.float64 or not pairwise:
        # a matrix-vector product: ~7x faster than sum(axis=0) over the short rows of R
        return np.ones(residual.shape[0], dtype=residual.dtype) @ residual
    # float32: keep NumPy's pairwise summation, whose error does not grow with n
    return residual.sum(axis=0)


def _transposed_product_kernels():
    """SciPy's own kernels behind ``A @ B`` for compressed sparse A and dense B, by A's
    format, or None. Private, but unchanged since SciPy 0.14; ``_sparse_transpose_product_into``
    calls them to write ``X^T R`` straight into the gradient's buffer."""
    try:
        from scipy.sparse import _sparsetools

        return {"csr": _sparsetools.csr_matvecs, "csc": _sparsetools.csc_matvecs}
    except (ImportError, AttributeError):  # pragma: no cover - the public product is used
        return None


_MATVECS = _transposed_product_kernels()


def _sparse_transpose_product_into(X, residual: np.ndarray, out: np.ndarray) -> bool:
    """``out += X^T residual`` in SciPy's own kernel, for sparse X [n, d] (CSR or CSC),
    ``residual`` [n, K] and ``out`` a C-contiguous [d, K] array of X's dtype.

    Returns False, and leaves ``out`` alone, where the kernel does not apply (another format
    or dtype, mixed index dtypes, or a SciPy without the kernels); the caller then takes the
    public product.
    """
    if _MATVECS is None or getattr(X, "format", None) not in ("csr", "csc"):
        return False
    if (
        X.dtype != residual.dtype
        or X.dtype != out.dtype
        or not out.flags.c_contiguous
        or out.shape != (X.shape[1], residual.shape[1])
        or X.indptr.dtype != X.indices.dtype
    ):
        return False
    n, d = X.shape
    # X^T is CSC when X is CSR and CSR when X is CSC, on X's own three arrays
    kernel = _MATVECS["csc" if X.format == "csr" else "csr"]
    flat_residual = np.ascontiguousarray(residual).ravel()
    kernel(d, n, residual.shape[1], X.indptr, X.indices, X.data, flat_residual, out.ravel())
    return True


def _gradient_residual(proba, y, sample_weight):
    """``s_i * (p_i - onehot(y_i))`` [n, K], computed in place in ``proba`` (either layout)."""
    residual = proba
    n = residual.shape[0]
    if residual.T.flags.c_contiguous:  # class-major: one flat gather and scatter
        flat = residual.T.reshape(-1)  # a view
        flat[_label_positions(y, n)] -= 1
    else:
        residual[np.arange(n), y] -= 1
    if sample_weight is not None:
        residual *= sample_weight[:, None]
    return residual


def loss_gradient(X, y, params, sample_weight=None, fit_intercept=True):
    """Weighted summed cross-entropy and its gradient with respect to ``params``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y : ndarray of shape (n,)
    params : ndarray of shape (K, p)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool

    Returns
    -------
    loss : float
    gradient : ndarray of shape (K, p)
    """
    if not _is_host(X):
        return _xp_loss_gradient(X, y, params, sample_weight, fit_intercept)[:2]
    value, gradient, _ = _loss_gradient_proba(X, y, params, sample_weight, fit_intercept, False)
    return value, gradient


def _loss_gradient_proba(X, y, params, sample_weight, fit_intercept, keep_proba: bool):
    """Loss, gradient and (when ``keep_proba``) the probabilities [n, K], in one pass over X
    made of cache-sized row blocks where that is faster (see ``_row_blocks``)."""
    blocks = _row_blocks(X, params.shape)
    if blocks is None:
        value, proba = _pass_loss_and_proba(X, y, params, sample_weight, fit_intercept)
        kept = proba.copy(order="K") if keep_proba else None
        residual = _gradient_residual(proba, y, sample_weight)
        return value, _residual_to_gradient(X, residual, fit_intercept), kept
    value = 0.0
    # the dtype the whole-matrix pass has: float64 params on float32 X compute in float64
    dtype = np.result_type(X.dtype, params.dtype)
    gradient = np.zeros(params.shape, dtype=dtype)
    kept = np.empty((X.shape[0], params.shape[0]), dtype=dtype) if keep_proba else None
    for rows in blocks:
        X_block, y_block = X[rows], y[rows]
        weight = None if sample_weight is None else sample_weight[rows]
        block_value, proba = _loss_and_proba(
            raw_prediction(X_block, params, fit_intercept), y_block, weight
        )
        value += block_value
        if keep_proba:
            kept[rows] = proba
        residual = _gradient_residual(proba, y_block, weight)
        gradient += _residual_to_gradient(X_block, residual, fit_intercept)
    return value, gradient, kept


class HessianProduct:
    """Hessian of the summed loss at one point, as an operator (no matrix is formed).

    Keeps the probabilities [n, K] of the point. Calling it on a direction [K, p] returns
    the Hessian-vector product; ``class_curvature`` and ``diagonal`` give the pieces that
    preconditioners are built from.
    """

    def __init__(self, X, proba: np.ndarray, sample_weight, fit_intercept: bool):
        # asked once per operator (a fit runs inside one threadpool_limits setting): the
        # thread count decides the row blocks and the product order of every call
        self._one_thread = isinstance(X, np.ndarray) and _numpy_blas_threads() == 1
        shape = (proba.shape[1], X.shape[1] + int(fit_intercept))
        self._blocks = _row_blocks(X, shape) if self._one_thread else None
        self.X = X
        self.proba = proba
        self.sample_weight = sample_weight
        self.fit_intercept = fit_intercept
        # whole-matrix products on the class-major probabilities of a dense pass run
        # class-major as well (see ``_class_major_product``)
        self._class_major = self._blocks is None and _is_class_major(X, proba)

    def __call__(self, direction: np.ndarray) -> np.ndarray:
        direction = direction.astype(self.proba.dtype, copy=False)
        blocks = self._blocks
        if blocks is None:
            return self._product(self.X, self.proba, self.sample_weight, direction)
        total = np.zeros(direction.shape, dtype=np.result_type(self.X.dtype, self.proba.dtype))
        for rows in blocks:
            weight = None if self.sample_weight is None else self.sample_weight[rows]
            total += self._product(self.X[rows], self.proba[rows], weight, direction)
        return total

    def _product(self, X, proba, sample_weight, direction):
        if self._class_major:
            return self._class_major_product(X, proba.T, sample_weight, direction)
        dz = raw_prediction(X, direction, self.fit_intercept)
        dz *= proba
        # p_ik dz_ik - p_ik (p_i . dz_i), then weighted by s_i
        dz -= proba * _row_sum(dz)[:, None]
        if sample_weight is not None:
            dz *= sample_weight[:, None]
        return _residual_to_gradient(
            X, dz, self.fit_intercept, pairwise=False, one_thread=self._one_thread
        )

    def _class_major_product(self, X, proba_t, sample_weight, direction):
        """``_product`` on class-major probabilities ``proba_t`` [K, n]: the scores of the
        direction as ``V X^T`` [K, n], the sums over classes as elementwise operations on K
        rows, as in the pass (``_pass_loss_and_proba``)."""
        coef, intercept = split_params(direction, self.fit_intercept)
        dz = coef @ X.T
        if intercept is not None:
            dz += intercept[:, None]
        dz *= proba_t
        # p_ik dz_ik - p_ik (p_i . dz_i), then weighted by s_i
        dz -= proba_t * dz.sum(axis=0)
        if sample_weight is not None:
            dz *= sample_weight
        return _residual_to_gradient(
            X, dz.T, self.fit_intercept, pairwise=False, one_thread=self._one_thread
        )

    def class_curvature(self) -> np.ndarray:
        """``sum_i s_i (diag(p_i) - p_i p_i^T)`` [K, K]: the class factor of the Hessian."""
        proba = self.proba
        weighted = proba if self.sample_weight is None else proba * self.sample_weight[:, None]
        curvature = -(weighted.T @ proba)
        # The diagonal as sum_i s_i p_ik (1 - p_ik), not sum s p - sum s p^2: the difference
        # cancels to a few digits when classes are confidently predicted (float32 above all).
        np.fill_diagonal(curvature, (weighted * (1 - proba)).sum(axis=0))
        return curvature

    def class_blocks(self) -> np.ndarray:
        """The within-class blocks of the Hessian [K, p, p]:
        ``sum_i s_i p_ik (1 - p_ik) x_i x_i^T`` (augmented by the intercept), float64."""
        curvature = self.proba * (1 - self.proba)
        if self.sample_weight is not None:
            curvature = curvature * self.sample_weight[:, None]
        return np.stack(
            [
                feature_gram(self.X, np.ascontiguousarray(curvature[:, k]), self.fit_intercept)
                for k in range(curvature.shape[1])
            ]
        )

    def diagonal(self, chunk_size: int = 8192) -> np.ndarray:
        """Diagonal of the Hessian [K, p]: ``sum_i s_i p_ik (1 - p_ik) x_ij^2``.

        Squares X by chunks (rows of dense X, ``squared_design_product`` for sparse X), so
        no squared copy of the whole of X is held.
        """
        weights = self.proba * (1 - self.proba)
        if self.sample_weight is not None:
            weights *= self.sample_weight[:, None]
        if sp.issparse(self.X):
            return squared_design_product(self.X, weights, self.fit_intercept)
        n = self.X.shape[0]
        total = None
        for start in range(0, n, chunk_size):
            chunk = self.X[start : start + chunk_size]
            part = _residual_to_gradient(
                chunk * chunk, weights[start : start + chunk_size], self.fit_intercept
            )
            total = part if total is None else total + part
        return total


# Nonzeros squared at a time by ``squared_design_product``: 2**18 (1 MB in float32), against
# X's 1.7 million on 20 Newsgroups, whose squared copy, cached, was 6.9 MB of a fit's peak.
_SQUARE_CHUNK_NONZEROS = 1 << 18


def squared_design_product(X, weights: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``weights^T [X o X, 1]`` [K, p] for sparse X [n, d] and ``weights`` [n, K]: the
    Hessian diagonal's sum, in the dtype of ``weights`` and in Fortran order.

    X's values are squared a chunk of its compressed axis at a time (rows of CSR, columns of
    CSC, about ``_SQUARE_CHUNK_NONZEROS`` nonzeros each), each chunk on views of X's index
    arrays, and each chunk's product is added into the result's buffer: the temporaries are
    a chunk's values, not a squared copy of X.
    """
    X = X if X.format in ("csr", "csc") else X.tocsr()
    n, d = X.shape
    weights = np.ascontiguousarray(weights)
    K, dtype = weights.shape[1], weights.dtype
    buffer = np.zeros((d + int(fit_intercept), K), dtype=dtype)
    coef_part = buffer[:d]
    indptr, by_rows = X.indptr, X.format == "csr"
    major = n if by_rows else d
    start = 0
    while start < major:
        # the lines (rows or columns) that hold the next chunk's nonzeros, at least one
        stop = int(np.searchsorted(indptr, indptr[start] + _SQUARE_CHUNK_NONZEROS, "right")) - 1
        stop = min(max(stop, start + 1), major)
        first, last = indptr[start], indptr[stop]
        arrays = (
            np.square(X.data[first:last], dtype=dtype),
            X.indices[first:last],
            indptr[start : stop + 1] - first,
        )
        if by_rows:
            chunk = sp.csr_matrix(arrays, shape=(stop - start, d))
            rows, target = weights[start:stop], coef_part
        else:
            chunk = sp.csc_matrix(arrays, shape=(n, stop - start))
            rows, target = weights, coef_part[start:stop]
        if not _sparse_transpose_product_into(chunk, rows, target):
            target += chunk.T @ rows
        start = stop
    if fit_intercept:
        buffer[d] = weights.sum(axis=0)
    return buffer.T


def loss_gradient_hessp(X, y, params, sample_weight=None, fit_intercept=True):
    """Loss, gradient and the Hessian operator at ``params``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y : ndarray of shape (n,)
    params : ndarray of shape (K, p)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool

    Returns
    -------
    loss : float
    gradient : ndarray of shape (K, p)
    hessp : HessianProduct
        ``hessp(direction [K, p]) -> [K, p]``, the Hessian of the summed loss times the
        direction.
    """
    if not _is_host(X):
        value, gradient, proba = _xp_loss_gradient(
            X, y, params, sample_weight, fit_intercept, keep_proba=True
        )
        return value, gradient, _ArrayAPIHessianProduct(X, proba, sample_weight, fit_intercept)
    value, gradient, proba = _loss_gradient_proba(
        X, y, params, sample_weight, fit_intercept, keep_proba=True
    )
    return value, gradient, HessianProduct(X, proba, sample_weight, fit_intercept)


def feature_gram(X, sample_weight=None, fit_intercept=True, chunk_size: int = 8192) -> np.ndarray:
    """Weighted second moment of the (augmented) features ``sum_i s_i x_i x_i^T`` [p, p].

    The feature factor of the Kronecker approximation ``H ~ A kron G`` of the Hessian.
    Accumulated by row chunks (no weighted copy of X).
    """
    if not _is_host(X):
        return _xp_feature_gram(X, sample_weight, fit_intercept)
    n, d = X.shape
    p = d + int(fit_intercept)
    gram = np.zeros((p, p), dtype=np.float64)
    if isinstance(X, np.ndarray) and (sample_weight is None or sample_weight.min() >= 0):
        return _dense_feature_gram(X, sample_weight, fit_intercept, chunk_size, gram)
    for start in range(0, n, chunk_size):
        chunk = X[start : start + chunk_size]
        weights = (
            np.ones(chunk.shape[0], dtype=X.dtype)
            if sample_weight is None
            else sample_weight[start : start + chunk_size]
        )
        weighted = (
            chunk.multiply(weights[:, None]).tocsr()
            if sp.issparse(chunk)
            else chunk * weights[:, None]
        )
        block = weighted.T @ chunk
        gram[:d, :d] += block.toarray() if sp.issparse(block) else block
        if fit_intercept:
            column = np.asarray(weighted.sum(axis=0)).ravel()
            gram[:d, d] += column
            gram[d, :d] += column
            gram[d, d] += weights.sum()
    return gram


def _dense_feature_gram(X, sample_weight, fit_intercept, chunk_size, gram):
    """``feature_gram`` of dense X with nonnegative weights, accumulated into ``gram``.

    Each chunk's rows ``sqrt(s_i) [x_i, 1]`` in X's dtype, then ``Z^T Z``: one GEMM with the
    intercept's row and column included, instead of a weighted float64 copy of X, a GEMM
    on mixed dtypes and separate column sums.
    """
    n, d = X.shape
    for start in range(0, n, chunk_size):
        chunk = X[start : start + chunk_size]
        rows = np.empty((chunk.shape[0], gram.shape[0]), dtype=X.dtype)
        if sample_weight is None:
            rows[:, :d] = chunk
            root = 1.0
        else:
            root = np.sqrt(sample_weight[start : start + chunk_size]).astype(X.dtype)
            np.multiply(chunk, root[:, None], out=rows[:, :d])
        if fit_intercept:
            rows[:, d] = root
        gram += rows.T @ rows
    return gram


def _augmented_rows(X_chunk, fit_intercept: bool) -> np.ndarray:
    """Dense rows of ``[X, 1]`` for a chunk of samples."""
    rows = X_chunk.toarray() if sp.issparse(X_chunk) else np.asarray(X_chunk)
    if fit_intercept:
        rows = np.hstack([rows, np.ones((rows.shape[0], 1), dtype=rows.dtype)])
    return rows


def hessian(X, y, params, sample_weight=None, fit_intercept=True, chunk_size=None):
    """Full Hessian of the summed loss, for problems with small ``K * p``.

    ``H = blockdiag_k(X^T diag(s p_k) X) - M^T M`` with ``M_i = sqrt(s_i) p_i kron x_i``:
    K matrix products and one large one, accumulated over row chunks so that memory stays
    ``O(chunk * K * p)``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y : ndarray of shape (n,)
    params : ndarray of shape (K, p)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool
    chunk_size : int or None
        Rows per chunk; by default sized so a chunk's ``M`` holds about 2**20 numbers.

    Returns
    -------
    ndarray of shape (K * p, K * p), symmetric, rows ordered as ``params.ravel()``.
    """
    if not _is_host(X):
        return _xp_hessian(X, params, sample_weight, fit_intercept, chunk_size)
    n = X.shape[0]
    K, p = params.shape
    dtype = params.dtype
    H = np.zeros((K * p, K * p), dtype=dtype)
    if chunk_size is None:
        chunk_size = max(1, min(n, (1 << 20) // max(1, K * p)))
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        X_chunk = X[start:stop]
        proba = softmax(raw_prediction(X_chunk, params, fit_intercept))
        rows = _augmented_rows(X_chunk, fit_intercept)
        s = np.ones(stop - start, dtype) if sample_weight is None else sample_weight[start:stop]
        for k in range(K):
            block = rows.T @ (rows * (s * proba[:, k])[:, None])
            H[k * p : (k + 1) * p, k * p : (k + 1) * p] += block
        root_s = np.sqrt(s)
        M = (proba * root_s[:, None])[:, :, None] * rows[:, None, :]
        M = M.reshape(stop - start, K * p)
        H -= M.T @ M
    return H


def hessian_diagonal(X, y, params, sample_weight=None, fit_intercept=True) -> np.ndarray:
    """Diagonal of the Hessian of the summed loss, [K, p]: a Jacobi preconditioner.

    ``diag_{k,j} = sum_i s_i p_ik (1 - p_ik) x_ij^2``.
    """
    proba = softmax(raw_prediction(X, params, fit_intercept))
    return HessianProduct(X, proba, sample_weight, fit_intercept).diagonal()


# ---------------------------------------------------------------------------------------------
# Array API inputs (PyTorch tensors, CuPy arrays), on their device.
#
# The n-sized work (X @ W^T, softmax, R^T X) runs in the namespace of X and on its device; the
# parameter-sized arrays (params [K, p], gradients, Hessian-vector products, [K, K] and [p, p]
# factors) stay NumPy arrays on the host, so the solvers run unchanged and only K * p numbers
# cross between host and device per pass. The NumPy/CSR code above is untouched (its speed is
# benchmarked); these functions are reached through one ``isinstance`` test per call.
# ---------------------------------------------------------------------------------------------
def _is_host(X) -> bool:
    return isinstance(X, np.ndarray) or sp.issparse(X)


def _namespace(X):
    from array_api_compat import array_namespace

    return array_namespace(X)


def _numpy_dtype(array) -> np.dtype:
    """NumPy dtype of an array API array (``torch.float32`` -> ``float32``)."""
    return np.dtype(str(array.dtype).rsplit(".", 1)[-1])


def to_host(array) -> np.ndarray:
    """A NumPy copy of a (small) array API array, from any device."""
    if isinstance(array, np.ndarray):
        return array
    module = type(array).__module__.split(".")[0]
    if module == "cupy":
        return array.get()
    if module == "torch":
        return array.detach().cpu().numpy()
    return np.asarray(array)


def to_device(array: np.ndarray, like):
    """``array`` (NumPy) in the namespace and on the device of ``like``, in its dtype."""
    from array_api_compat import device

    xp = _namespace(like)
    host = np.ascontiguousarray(array, dtype=_numpy_dtype(like))
    return xp.asarray(host, device=device(like))


def _xp_scores(X, params: np.ndarray, fit_intercept: bool):
    W = to_device(params, X)
    if fit_intercept:
        return X @ W[:, :-1].T + W[:, -1]
    return X @ W.T


def _xp_loss_and_proba(X, y, params, sample_weight, fit_intercept):
    xp = _namespace(X)
    raw = _xp_scores(X, params, fit_intercept)
    raw = raw - xp.max(raw, axis=1, keepdims=True)
    rows = xp.arange(raw.shape[0], device=raw.device)
    raw_true = raw[rows, y]  # integer-array indexing: supported by torch and cupy
    exp = xp.exp(raw)
    sum_exp = xp.sum(exp, axis=1)
    proba = exp / sum_exp[:, None]
    per_sample = xp.log(sum_exp) - raw_true
    if sample_weight is not None:
        per_sample = per_sample * sample_weight
    return float(xp.sum(xp.astype(per_sample, xp.float64))), proba


def _xp_to_gradient(X, residual, fit_intercept: bool) -> np.ndarray:
    xp = _namespace(X)
    grad_coef = to_host(X.T @ residual).T
    if not fit_intercept:
        return np.ascontiguousarray(grad_coef)
    return np.hstack([grad_coef, to_host(xp.sum(residual, axis=0))[:, None]])


def _xp_loss_gradient(X, y, params, sample_weight, fit_intercept, keep_proba=False):
    value, proba = _xp_loss_and_proba(X, y, params, sample_weight, fit_intercept)
    xp = _namespace(X)
    rows = xp.arange(proba.shape[0], device=proba.device)
    residual = xp.asarray(proba, copy=True) if keep_proba else proba
    residual[rows, y] -= 1
    if sample_weight is not None:
        residual = residual * sample_weight[:, None]
    gradient = _xp_to_gradient(X, residual, fit_intercept)
    return value, gradient, proba


class _ArrayAPIHessianProduct:
    """``HessianProduct`` for array API data: probabilities on the device, NumPy in and out."""

    def __init__(self, X, proba, sample_weight, fit_intercept: bool, chunk_size: int = 65536):
        self.X = X
        self.proba = proba
        self.sample_weight = sample_weight
        self.fit_intercept = fit_intercept
        self.chunk_size = chunk_size

    def __call__(self, direction: np.ndarray) -> np.ndarray:
        xp = _namespace(self.X)
        proba = self.proba
        dz = _xp_scores(self.X, direction, self.fit_intercept) * proba
        dz = dz - proba * xp.sum(dz, axis=1, keepdims=True)
        if self.sample_weight is not None:
            dz = dz * self.sample_weight[:, None]
        return _xp_to_gradient(self.X, dz, self.fit_intercept)

    def class_curvature(self) -> np.ndarray:
        xp = _namespace(self.X)
        proba = self.proba
        weighted = proba if self.sample_weight is None else proba * self.sample_weight[:, None]
        curvature = -to_host(weighted.T @ proba).astype(np.float64)
        # The diagonal without cancellation, as in the NumPy objective.
        np.fill_diagonal(curvature, to_host(xp.sum(weighted * (1 - proba), axis=0)))
        return curvature

    def diagonal(self) -> np.ndarray:
        weights = self.proba * (1 - self.proba)
        if self.sample_weight is not None:
            weights = weights * self.sample_weight[:, None]
        n = self.X.shape[0]
        total = None
        for start in range(0, n, self.chunk_size):
            chunk = self.X[start : start + self.chunk_size]
            part = _xp_to_gradient(
                chunk * chunk, weights[start : start + self.chunk_size], self.fit_intercept
            )
            total = part if total is None else total + part
        return total


def _xp_feature_gram(X, sample_weight, fit_intercept, chunk_size: int = 65536) -> np.ndarray:
    xp = _namespace(X)
    n, d = X.shape
    p = d + int(fit_intercept)
    gram = np.zeros((p, p), dtype=np.float64)
    for start in range(0, n, chunk_size):
        chunk = X[start : start + chunk_size]
        weighted = (
            chunk
            if sample_weight is None
            else chunk * sample_weight[start : start + chunk_size, None]
        )
        gram[:d, :d] += to_host(weighted.T @ chunk)
        if fit_intercept:
            column = to_host(xp.sum(weighted, axis=0))
            gram[:d, d] += column
            gram[d, :d] += column
            gram[d, d] += (
                chunk.shape[0]
                if sample_weight is None
                else float(xp.sum(sample_weight[start : start + chunk_size]))
            )
    return gram


def _xp_hessian(X, params, sample_weight, fit_intercept, chunk_size=None) -> np.ndarray:
    """``hessian`` for array API data: blocks formed on the device, summed on the host."""
    xp = _namespace(X)
    n = X.shape[0]
    K, p = params.shape
    H = np.zeros((K * p, K * p), dtype=np.float64)
    if chunk_size is None:
        chunk_size = max(1, min(n, (1 << 22) // max(1, K * p)))
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        X_chunk = X[start:stop]
        raw = _xp_scores(X_chunk, params, fit_intercept)
        exp = xp.exp(raw - xp.max(raw, axis=1, keepdims=True))
        proba = exp / xp.sum(exp, axis=1, keepdims=True)
        rows = X_chunk
        if fit_intercept:
            ones = xp.ones((stop - start, 1), dtype=X.dtype, device=X.device)
            rows = xp.concat([X_chunk, ones], axis=1)
        if sample_weight is None:
            s = xp.ones(stop - start, dtype=X.dtype, device=X.device)
        else:
            s = sample_weight[start:stop]
        for k in range(K):
            block = rows.T @ (rows * (s * proba[:, k])[:, None])
            H[k * p : (k + 1) * p, k * p : (k + 1) * p] += to_host(block)
        M = (proba * xp.sqrt(s)[:, None])[:, :, None] * rows[:, None, :]
        M = xp.reshape(M, (stop - start, K * p))
        H -= to_host(M.T @ M)
    return H.astype(params.dtype)


def _xp_linear_scores(X, coef, intercept):
    xp = _namespace(X)
    coef = xp.asarray(coef, device=X.device) if isinstance(coef, np.ndarray) else coef
    raw = X @ coef.T
    if intercept is not None:
        raw = raw + (
            xp.asarray(intercept, device=X.device)
            if isinstance(intercept, np.ndarray)
            else intercept
        )
    return raw


def _xp_log_softmax(raw):
    xp = _namespace(raw)
    shifted = raw - xp.max(raw, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def _xp_softmax(raw):
    xp = _namespace(raw)
    exp = xp.exp(raw - xp.max(raw, axis=1, keepdims=True))
    return exp / xp.sum(exp, axis=1, keepdims=True)
