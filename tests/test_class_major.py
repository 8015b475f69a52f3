"""Class-major passes over dense X (scores ``W X^T`` [K, n]) against outside references:
SciPy's softmax for the pass, and the Hessian formed whole (``_loss.hessian``, K block
products minus ``M^T M``) for every piece of the operator built from their probabilities,
on X stored by rows and by columns."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
from test_blocked_passes import _data as blocked_passes_data

from softmaxreg import _loss


def _data(dtype, weighted):
    """X [700, 9], y (K=5), sample weights or None, params [5, 10] (the blocked passes' data)."""
    X, y, sample_weight, params, _ = blocked_passes_data(dtype, weighted, n=700, d=9, K=5, seed=1)
    return X, y, sample_weight, params


def _tolerance(dtype):
    return 1e-12 if dtype == np.float64 else 2e-5


def _scipy_scores(X, params, fit_intercept):
    """``[X, 1] W^T`` in float64, the scores the references are computed from."""
    X64, params64 = X.astype(np.float64), params.astype(np.float64)
    if not fit_intercept:
        return X64 @ params64.T
    return X64 @ params64[:, :-1].T + params64[:, -1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_class_major_pass_matches_scipy(dtype, weighted, fit_intercept):
    X, y, sample_weight, params = _data(dtype, weighted)
    if not fit_intercept:
        params = params[:, :-1].copy()
    value, proba = _loss._pass_loss_and_proba(X, y, params, sample_weight, fit_intercept)
    # the [n, K] view of a C-ordered [K, n] array
    assert proba.shape == (X.shape[0], params.shape[0]) and proba.T.flags.c_contiguous
    scores = _scipy_scores(X, params, fit_intercept)
    weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    log_proba = scipy.special.log_softmax(scores, axis=1)
    rtol = _tolerance(dtype)
    assert value == pytest.approx(-np.sum(weights * log_proba[np.arange(len(y)), y]), rel=rtol)
    expected_proba = scipy.special.softmax(scores, axis=1)
    np.testing.assert_allclose(proba, expected_proba, rtol=rtol, atol=rtol)
    # the residual, formed in place in the class-major array
    residual = _loss._gradient_residual(proba.copy(order="K"), y, sample_weight)
    onehot = np.eye(params.shape[0])[y]
    expected_residual = weights[:, None] * (expected_proba - onehot)
    np.testing.assert_allclose(residual, expected_residual, rtol=rtol, atol=rtol)


def test_sparse_passes_stay_row_major():
    X, y, _, params = _data(np.float64, False)
    _, proba = _loss._pass_loss_and_proba(sp.csr_matrix(X), y, params, None, True)
    assert proba.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_hessian_pieces_from_class_major_probabilities(dtype, weighted, transposed):
    X, y, sample_weight, params = _data(dtype, weighted)
    # X stored by columns (Fortran order): X^T stored [d, n], used as its [n, d] view
    design = np.ascontiguousarray(X.T).T if transposed else X
    _, proba = _loss._pass_loss_and_proba(X, y, params, sample_weight, True)
    operator = _loss.HessianProduct(design, proba, sample_weight, True)
    assert operator._class_major
    K, p = params.shape
    # the reference: the whole Hessian, formed in float64 from its own row-major softmax
    weights64 = None if sample_weight is None else sample_weight.astype(np.float64)
    hessian = _loss.hessian(X.astype(np.float64), y, params.astype(np.float64), weights64)
    blocks = hessian.reshape(K, p, K, p)
    rtol = 1e-10 if dtype == np.float64 else 1e-4

    def close(got, expected):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())

    direction = np.random.default_rng(2).standard_normal(params.shape).astype(dtype)
    close(operator(direction), (hessian @ direction.astype(np.float64).ravel()).reshape(K, p))
    # the class factor is the Hessian between the intercepts (x = 1 there)
    close(operator.class_curvature(), blocks[:, p - 1, :, p - 1])
    close(operator.diagonal(), np.diagonal(hessian).reshape(K, p))


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
