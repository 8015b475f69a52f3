"""The loss module against outside references: finite differences, scipy, brute force."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp

from softmaxreg import _loss


def make_problem(n=40, d=5, K=4, sparse=False, weighted=False, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if sparse:
        X[rng.random(size=X.shape) < 0.6] = 0.0
        X = sp.csr_matrix(X)
    X = X.astype(dtype)
    y = rng.integers(0, K, size=n)
    y[:K] = np.arange(K)
    sample_weight = rng.uniform(0.2, 3.0, size=n).astype(dtype) if weighted else None
    return X, y, sample_weight, K


def reference_loss(X, y, params, sample_weight, fit_intercept):
    """Cross-entropy written independently with scipy's logsumexp, in float64."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    params = params.astype(np.float64)
    coef = params[:, :-1] if fit_intercept else params
    scores = X @ coef.T + (params[:, -1] if fit_intercept else 0.0)
    per_sample = logsumexp(scores, axis=1) - scores[np.arange(len(y)), y]
    weights = np.ones(len(y)) if sample_weight is None else sample_weight.astype(np.float64)
    return float(per_sample @ weights)


CASES = [
    dict(sparse=False, weighted=False),
    dict(sparse=True, weighted=False),
    dict(sparse=False, weighted=True),
    dict(sparse=True, weighted=True),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_loss_matches_logsumexp_reference(case, fit_intercept):
    X, y, sw, K = make_problem(**case)
    rng = np.random.default_rng(1)
    params = rng.normal(size=(K, X.shape[1] + fit_intercept))
    expected = reference_loss(X, y, params, sw, fit_intercept)
    assert _loss.loss(X, y, params, sw, fit_intercept) == pytest.approx(expected, rel=1e-12)
    value, _ = _loss.loss_gradient(X, y, params, sw, fit_intercept)
    assert value == pytest.approx(expected, rel=1e-12)


def central_difference(function, params, eps):
    """Gradient of a scalar function by central differences, entry by entry."""
    grad = np.zeros_like(params, dtype=np.float64)
    for index in np.ndindex(params.shape):
        step = np.zeros_like(params)
        step[index] = eps
        grad[index] = (function(params + step) - function(params - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_matches_finite_differences(case, fit_intercept):
    X, y, sw, K = make_problem(**case)
    params = np.random.default_rng(2).normal(size=(K, X.shape[1] + fit_intercept))
    _, gradient = _loss.loss_gradient(X, y, params, sw, fit_intercept)
    numeric = central_difference(
        lambda p: reference_loss(X, y, p, sw, fit_intercept), params, 1e-6
    )
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hessp_matches_finite_differences_of_gradient(case, fit_intercept):
    X, y, sw, K = make_problem(**case)
    rng = np.random.default_rng(3)
    params = rng.normal(size=(K, X.shape[1] + fit_intercept))
    direction = rng.normal(size=params.shape)
    _, _, hessp = _loss.loss_gradient_hessp(X, y, params, sw, fit_intercept)
    eps = 1e-5
    grad_plus = _loss.loss_gradient(X, y, params + eps * direction, sw, fit_intercept)[1]
    grad_minus = _loss.loss_gradient(X, y, params - eps * direction, sw, fit_intercept)[1]
    numeric = (grad_plus - grad_minus) / (2 * eps)
    np.testing.assert_allclose(hessp(direction), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_full_hessian_matches_hessp_columns(case):
    X, y, sw, K = make_problem(n=30, d=3, K=3, **case)
    rng = np.random.default_rng(4)
    params = rng.normal(size=(K, X.shape[1] + 1))
    _, _, hessp = _loss.loss_gradient_hessp(X, y, params, sw, True)
    H = _loss.hessian(X, y, params, sw, True, chunk_size=7)  # several chunks
    identity = np.eye(params.size)
    columns = np.column_stack([hessp(e.reshape(params.shape)).ravel() for e in identity])
    np.testing.assert_allclose(H, columns, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    diagonal = _loss.hessian_diagonal(X, y, params, sw, True)
    np.testing.assert_allclose(diagonal.ravel(), np.diag(H), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_class_curvature_is_the_sum_of_per_sample_class_hessians(weighted):
    X, y, sw, K = make_problem(n=25, K=4, weighted=weighted)
    params = np.random.default_rng(6).normal(size=(K, X.shape[1] + 1))
    _, _, hessp = _loss.loss_gradient_hessp(X, y, params, sw, True)
    scores = X @ params[:, :-1].T + params[:, -1]
    proba = np.exp(scores - logsumexp(scores, axis=1, keepdims=True))
    weights = np.ones(len(y)) if sw is None else sw
    expected = sum(s * (np.diag(p) - np.outer(p, p)) for s, p in zip(weights, proba, strict=True))
    np.testing.assert_allclose(hessp.class_curvature(), expected, rtol=1e-12, atol=1e-14)


def test_float32_class_curvature_keeps_its_digits_when_predictions_are_confident():
    # sum s p (1 - p) computed as sum s p - sum s p^2 cancels to a few float32 digits when
    # most probabilities are near 1; the diagonal must not lose them.
    X, y, sw, K = make_problem(n=3000, d=5, K=5, weighted=True, dtype=np.float32)
    params = 6 * np.random.default_rng(7).normal(size=(K, X.shape[1] + 1)).astype(np.float32)
    _, _, hessp32 = _loss.loss_gradient_hessp(X, y, params, sw, True)
    _, _, hessp64 = _loss.loss_gradient_hessp(
        X.astype(np.float64), y, params.astype(np.float64), sw.astype(np.float64), True
    )
    expected = hessp64.class_curvature()
    error = np.abs(hessp32.class_curvature() - expected)
    assert np.max(error / np.abs(np.diag(expected))[:, None]) <= 1e-5


@pytest.mark.parametrize("sparse", [False, True])
def test_float32_stays_float32_and_close_to_float64(sparse):
    X, y, sw, K = make_problem(sparse=sparse, weighted=True, dtype=np.float32)
    params = np.random.default_rng(5).normal(size=(K, X.shape[1] + 1)).astype(np.float32)
    value, gradient = _loss.loss_gradient(X, y, params, sw, True)
    assert gradient.dtype == np.float32
    _, _, hessp = _loss.loss_gradient_hessp(X, y, params, sw, True)
    assert hessp(params).dtype == np.float32
    X64 = X.astype(np.float64)
    value64, gradient64 = _loss.loss_gradient(
        X64, y, params.astype(np.float64), sw.astype(np.float64), True
    )
    assert value == pytest.approx(value64, rel=1e-5)
    np.testing.assert_allclose(gradient, gradient64, rtol=1e-4, atol=1e-4)
    # and the float32 gradient agrees with finite differences of the float64 reference
    numeric = central_difference(
        lambda p: reference_loss(X64, y, p, sw, True), params.astype(np.float64), 1e-6
    )
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-4)


def test_sparse_input_is_never_densified(monkeypatch):
    X, y, sw, K = make_problem(sparse=True)
    params = np.zeros((K, X.shape[1] + 1))

    def forbidden(*args, **kwargs):
        raise AssertionError("X was densified")

    monkeypatch.setattr(type(X), "toarray", forbidden)
    monkeypatch.setattr(type(X), "todense", forbidden)
    _loss.loss_gradient(X, y, params, sw, True)
    _, _, hessp = _loss.loss_gradient_hessp(X, y, params, sw, True)
    hessp(np.ones_like(params))
    _loss.hessian_diagonal(X, y, params, sw, True)


def test_huge_scores_stay_finite():
    X = np.array([[1.0], [-1.0], [0.5]])
    y = np.array([0, 1, 2])
    params = np.array([[1e4, 0.0], [-1e4, 0.0], [0.0, 0.0]])
    value, gradient = _loss.loss_gradient(X, y, params, None, True)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))
    assert value == pytest.approx(reference_loss(X, y, params, None, True), rel=1e-12)
    proba = _loss.softmax(_loss.raw_prediction(X, params, True))
    assert np.all(np.isfinite(proba))
    assert np.all(np.isfinite(_loss.log_softmax(np.array([[1e4, -1e4, 0.0]]))))


# ---------------------------------------------------------------- properties (hypothesis)
scores_strategy = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(2, 7)),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(scores_strategy)
def test_probabilities_are_in_unit_interval_and_sum_to_one(scores):
    proba = _loss.softmax(scores)
    assert np.all(proba >= 0) and np.all(proba <= 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(_loss.log_softmax(scores)), proba, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(scores_strategy, st.floats(-1e3, 1e3, allow_nan=False))
def test_adding_a_constant_to_every_score_changes_nothing(scores, constant):
    shifted = scores + constant
    np.testing.assert_allclose(_loss.softmax(shifted), _loss.softmax(scores), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(scores_strategy, st.randoms(use_true_random=False))
def test_permuting_classes_permutes_probabilities(scores, random):
    permutation = list(range(scores.shape[1]))
    random.shuffle(permutation)
    np.testing.assert_allclose(
        _loss.softmax(scores[:, permutation]), _loss.softmax(scores)[:, permutation], atol=1e-12
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-5, 5))
def test_loss_is_invariant_to_a_shift_of_every_class_and_equivariant_to_relabelling(seed, shift):
    X, y, sw, K = make_problem(n=20, d=3, K=3, weighted=True, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    params = rng.normal(size=(K, 4))
    value, gradient = _loss.loss_gradient(X, y, params, sw, True)
    # same vector added to every class's row: loss unchanged, gradient unchanged
    shifted = params + shift * rng.normal(size=(1, 4))
    value_shifted, gradient_shifted = _loss.loss_gradient(X, y, shifted, sw, True)
    assert value_shifted == pytest.approx(value, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(gradient_shifted, gradient, atol=1e-9)
    # gradient rows sum to zero over classes (the reason for the shift invariance)
    np.testing.assert_allclose(gradient.sum(axis=0), 0.0, atol=1e-9)
    # relabelling the classes and permuting the rows of params: same loss, permuted gradient
    permutation = rng.permutation(K)
    inverse = np.argsort(permutation)
    value_perm, gradient_perm = _loss.loss_gradient(X, inverse[y], params[permutation], sw, True)
    assert value_perm == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(gradient_perm, gradient[permutation], atol=1e-12)
