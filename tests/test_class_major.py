"""Class-major passes over dense X (scores ``W X^T`` [K, n]) equal the row-major arithmetic
(``X W^T`` [n, K]) they replace, and so does every piece of the Hessian operator built from
their probabilities, on X as given and on the float32 design stored transposed."""

import numpy as np
import pytest
import scipy.sparse as sp
from test_blocked_passes import _data as blocked_passes_data

from softmaxreg import _loss
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty


def _data(dtype, weighted):
    """X [700, 9], y (K=5), sample weights or None, params [5, 10] (the blocked passes' data)."""
    X, y, sample_weight, params, _ = blocked_passes_data(dtype, weighted, n=700, d=9, K=5, seed=1)
    return X, y, sample_weight, params


def _tolerance(dtype):
    return 1e-12 if dtype == np.float64 else 2e-5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_class_major_pass_equals_the_row_major_pass(dtype, weighted, fit_intercept):
    X, y, sample_weight, params = _data(dtype, weighted)
    if not fit_intercept:
        params = params[:, :-1].copy()
    value, proba = _loss._pass_loss_and_proba(X, y, params, sample_weight, fit_intercept)
    # the [n, K] view of a C-ordered [K, n] array
    assert proba.shape == (X.shape[0], params.shape[0]) and proba.T.flags.c_contiguous
    raw = _loss.raw_prediction(X, params, fit_intercept)
    expected_value, expected_proba = _loss._loss_and_proba(raw, y, sample_weight)
    rtol = _tolerance(dtype)
    assert value == pytest.approx(expected_value, rel=rtol)
    np.testing.assert_allclose(proba, expected_proba, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=rtol)
    # the gradient from these probabilities: residual formed in place in the class-major array
    residual = _loss._gradient_residual(proba.copy(order="K"), y, sample_weight)
    expected_residual = _loss._gradient_residual(expected_proba, y, sample_weight)
    np.testing.assert_allclose(residual, expected_residual, rtol=rtol, atol=rtol)


def test_sparse_passes_stay_row_major():
    X, y, _, params = _data(np.float64, False)
    _, proba = _loss._pass_loss_and_proba(sp.csr_matrix(X), y, params, None, True)
    assert proba.flags.c_contiguous


def _operators(X, y, sample_weight, params, design):
    """The Hessian operator on class-major probabilities and on a C-ordered copy of them."""
    _, proba = _loss._pass_loss_and_proba(X, y, params, sample_weight, True)
    class_major = _loss.HessianProduct(design, proba, sample_weight, True)
    row_major = _loss.HessianProduct(
        np.ascontiguousarray(design), np.ascontiguousarray(proba), sample_weight, True
    )
    assert class_major._class_major and not row_major._class_major
    return class_major, row_major


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_hessian_pieces_from_class_major_probabilities(dtype, weighted, transposed):
    X, y, sample_weight, params = _data(dtype, weighted)
    # the float32 design of class-major fits: X^T stored [d, n], used as its [n, d] view
    design = np.ascontiguousarray(X.T).T if transposed else X
    assert _loss._stored_transposed(design) == transposed
    class_major, row_major = _operators(X, y, sample_weight, params, design)
    rtol = _tolerance(dtype)

    def close(got, expected):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())

    direction = np.random.default_rng(2).standard_normal(params.shape).astype(dtype)
    close(class_major(direction), row_major(direction))
    close(class_major.class_curvature(), row_major.class_curvature())
    close(class_major.row_curvature(), row_major.row_curvature())
    close(class_major.curvature_gram()[0], row_major.curvature_gram()[0])
    close(class_major.diagonal(), row_major.diagonal())
    for threshold in (0.0, 0.05):
        blocks, n_rows = class_major.class_blocks(threshold)
        expected_blocks, expected_rows = row_major.class_blocks(threshold)
        assert n_rows == expected_rows == row_major.class_block_rows(threshold)
        close(blocks, expected_blocks)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_feature_gram_of_a_transposed_design(weighted, fit_intercept):
    X, _, sample_weight, _ = _data(np.float64, weighted)
    transposed = np.ascontiguousarray(X.T).T
    np.testing.assert_allclose(
        _loss.feature_gram(transposed, sample_weight, fit_intercept, chunk_size=256),
        _loss.feature_gram(X, sample_weight, fit_intercept),
        rtol=1e-12,
    )


def test_float32_design_layout_follows_the_passes(monkeypatch):
    X, y, _, _ = _data(np.float64, False)
    objective = SoftmaxObjective(X, y, 5, None, True, 1.0, Penalty.from_params("l2", None))
    design, has_intercept_column = objective.float32_design()
    assert has_intercept_column and _loss._stored_transposed(design)
    np.testing.assert_array_equal(design[:, :-1], X.astype(np.float32))
    np.testing.assert_array_equal(design[:, -1], 1.0)
    # passes by row blocks keep row-major probabilities, and their design is row-major too
    monkeypatch.setattr(_loss, "_numpy_blas_threads", lambda: 1)
    monkeypatch.setattr(_loss, "_BLOCK_MIN_X_BYTES", 0)
    monkeypatch.setattr(_loss, "_BLOCK_NUMBERS", 6 * 300)
    objective = SoftmaxObjective(X, y, 5, None, True, 1.0, Penalty.from_params("l2", None))
    design, _ = objective.float32_design()
    assert design.flags.c_contiguous
