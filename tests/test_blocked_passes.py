"""Cache-blocked passes over dense X (used with one BLAS thread) equal whole-matrix passes,
and the fast row reductions equal NumPy's."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from softmaxreg import _loss


def _data(dtype, weighted, n=1000, d=6, K=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, K, n)
    y[:K] = np.arange(K)
    sample_weight = rng.uniform(0.2, 3.0, n).astype(dtype) if weighted else None
    params = rng.standard_normal((K, d + 1)).astype(dtype)
    direction = rng.standard_normal((K, d + 1)).astype(dtype)
    return X, y, sample_weight, params, direction


def _passes(X, y, sample_weight, params, direction, fit_intercept, params_dtype=None):
    if params_dtype is not None:  # e.g. prox-newton's float64 iterates on float32 X
        params, direction = params.astype(params_dtype), direction.astype(params_dtype)
    if not fit_intercept:
        params, direction = params[:, :-1].copy(), direction[:, :-1].copy()
    value, gradient = _loss.loss_gradient(X, y, params, sample_weight, fit_intercept)
    value2, gradient2, hessp = _loss.loss_gradient_hessp(X, y, params, sample_weight, fit_intercept)
    assert value2 == value
    np.testing.assert_array_equal(gradient2, gradient)
    return value, gradient, hessp.proba, hessp(direction)


@pytest.mark.parametrize(
    "dtype, params_dtype", [(np.float64, None), (np.float32, None), (np.float32, np.float64)]
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_blocked_passes_equal_whole_matrix_passes(
    monkeypatch, dtype, params_dtype, weighted, fit_intercept
):
    data = _data(dtype, weighted)
    monkeypatch.setattr(_loss, "_numpy_blas_threads", lambda: 2)  # whole-matrix products
    assert _loss._row_blocks(data[0], (3, 7)) is None
    whole = _passes(*data, fit_intercept, params_dtype)
    monkeypatch.setattr(_loss, "_numpy_blas_threads", lambda: 1)
    monkeypatch.setattr(_loss, "_BLOCK_NUMBERS", 7 * 300)  # blocks of 300 rows: 4 blocks
    monkeypatch.setattr(_loss, "_BLOCK_MIN_X_BYTES", 0)  # block this small problem too
    blocks = _loss._row_blocks(data[0], (3, 7))
    assert [b.stop - b.start for b in blocks] == [300, 300, 300, 100]
    blocked = _passes(*data, fit_intercept, params_dtype)
    rtol = 1e-12 if (params_dtype or dtype) == np.float64 else 2e-5
    for got, expected in zip(blocked, whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
        assert np.asarray(got).dtype == np.asarray(expected).dtype


def test_one_blas_thread_is_detected():
    with threadpool_limits(1, user_api="blas"):
        assert _loss._numpy_blas_threads() == 1
        # [n, K] scores of 100_000 x 11 float64 (8.8 MB) pass the size threshold
        rows = _loss._row_blocks(np.zeros((100_000, 3)), (11, 4))
        assert rows is not None and rows[0] == slice(0, _loss._BLOCK_NUMBERS // 11)


def test_no_blocks_for_sparse_or_small_inputs():
    import scipy.sparse as sp

    with threadpool_limits(1, user_api="blas"):
        assert _loss._row_blocks(sp.random(100_000, 10, format="csr"), (11, 11)) is None
        assert _loss._row_blocks(np.zeros((100, 3)), (10, 4)) is None
        # 20_000 x 50 float64 (8 MB) with K=10 (1.6 MB of scores): small enough for caches
        assert _loss._row_blocks(np.zeros((20_000, 50)), (10, 51)) is None


@pytest.mark.parametrize("K", [1, 3, 40])
def test_row_reductions_equal_numpy(K):
    rng = np.random.default_rng(K)
    scores = rng.standard_normal((50, K)) * 100
    scores[3, 0] = np.nan
    scores[4, -1] = np.inf
    scores[5, :] = -np.inf
    np.testing.assert_array_equal(_loss._row_max(scores), scores.max(axis=1))
    finite = np.nan_to_num(scores, nan=0.0, posinf=1.0, neginf=-1.0)
    np.testing.assert_allclose(_loss._row_sum(finite), finite.sum(axis=1), rtol=1e-13)
    assert _loss._row_sum(finite.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n, d, K, chunk", [(1000, 6, 4, 24 * 300), (1000, 6, 4, 24 * 333), (7, 3, 2, 1)]
)
def test_transposed_product_by_row_chunks_equals_one_product(monkeypatch, dtype, n, d, K, chunk):
    """``R^T X`` summed over row chunks (300 and 333 rows, the last chunk shorter; single rows)
    equals the single product, in the dtype of the operands."""
    rng = np.random.default_rng(n + d)
    X = rng.standard_normal((n, d)).astype(dtype)
    residual = rng.standard_normal((n, K)).astype(dtype)
    monkeypatch.setattr(_loss, "_PRODUCT_CHUNK_MULTIPLY_ADDS", chunk)
    chunked = _loss.transposed_product(residual, X)
    expected = residual.astype(np.float64).T @ X.astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(chunked, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    assert chunked.dtype == dtype and chunked.shape == (K, d) and chunked.flags.c_contiguous


def test_transposed_product_is_one_product_when_one_chunk_holds_every_row(monkeypatch):
    rng = np.random.default_rng(0)
    X, residual = rng.standard_normal((50, 4)), rng.standard_normal((50, 3))
    monkeypatch.setattr(_loss, "_PRODUCT_CHUNK_MULTIPLY_ADDS", 50 * 4 * 3)
    np.testing.assert_array_equal(_loss.transposed_product(residual, X), residual.T @ X)
