"""PyTorch tensors through the array API path, against the NumPy objective and fit."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine, make_classification
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression
from softmaxreg._array_api import ArrayAPIObjective
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty

# torch is a dev dependency: a missing one fails the import loudly


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(
        n_samples=3_000, n_features=12, n_informative=8, n_classes=5, random_state=3
    )
    weights = np.random.default_rng(3).uniform(0.2, 2.0, size=len(y))
    return X, y, weights


def _objectives(X, y, weights, dtype):
    penalty = Penalty.from_params("l2", None)
    Xn = X.astype(dtype)
    wn = weights.astype(dtype)
    numpy_objective = SoftmaxObjective(Xn, y, 5, wn, True, 0.7, penalty)
    torch_objective = ArrayAPIObjective(
        torch.from_numpy(Xn), torch.from_numpy(y), 5, torch.from_numpy(wn), True, 0.7, penalty
    )
    return numpy_objective, torch_objective


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-8), (np.float32, 1e-5)])
def test_torch_objective_matches_numpy(problem, dtype, rtol):
    X, y, weights = problem
    reference, ours = _objectives(X, y, weights, dtype)
    params = np.random.default_rng(0).normal(size=reference.shape).astype(dtype)
    direction = np.random.default_rng(1).normal(size=reference.shape).astype(dtype)

    def close(a, b, tolerance=rtol):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.max(np.abs(a - b)) <= tolerance * np.max(np.abs(b))

    value, gradient, hessp = ours.loss_gradient_hessp(params)
    ref_value, ref_gradient, ref_hessp = reference.loss_gradient_hessp(params)
    assert isinstance(gradient, np.ndarray) and gradient.dtype == dtype
    assert abs(value - ref_value) <= rtol * abs(ref_value)
    close(gradient, ref_gradient)
    close(hessp(direction), ref_hessp(direction))
    close(hessp.class_curvature(), ref_hessp.class_curvature())
    close(hessp.diagonal(), ref_hessp.diagonal())
    close(ours.feature_gram(), reference.feature_gram())
    # the full Hessian accumulates K * p products per entry and chunk: in float32 both
    # sides carry ~1e-5 of rounding (only the Newton-Cholesky solver and inference use it)
    close(ours.hessian(params), reference.hessian(params), 10 * rtol)
    close(ours.loss_gradient(params)[1], ref_gradient)
    assert abs(ours.loss(params) - ref_value) <= rtol * abs(ref_value)
    close(ours.initial_params(), reference.initial_params())


@pytest.mark.parametrize("solver", ["auto", "lbfgs", "newton-cg", "newton-cholesky"])
def test_torch_fit_matches_numpy_fit(problem, solver):
    X, y, weights = problem
    reference = SoftmaxRegression(solver=solver).fit(X, y, sample_weight=weights)
    model = SoftmaxRegression(solver=solver).fit(
        torch.from_numpy(X), torch.from_numpy(y), sample_weight=torch.from_numpy(weights)
    )
    assert isinstance(model.coef_, torch.Tensor) and model.coef_.dtype == torch.float64
    assert isinstance(model.intercept_, torch.Tensor)
    assert isinstance(model.classes_, torch.Tensor)
    proba = model.predict_proba(torch.from_numpy(X))
    assert isinstance(proba, torch.Tensor)
    assert np.max(np.abs(proba.numpy() - reference.predict_proba(X))) <= 1e-6
    labels = model.predict(torch.from_numpy(X))
    assert isinstance(labels, torch.Tensor)
    np.testing.assert_array_equal(labels.numpy(), reference.predict(X))
    log_proba = model.predict_log_proba(torch.from_numpy(X))
    np.testing.assert_allclose(log_proba.numpy(), reference.predict_log_proba(X), atol=1e-5)


def test_torch_float32_and_string_labels():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    reference = SoftmaxRegression(tol=1e-6, class_weight="balanced").fit(X, labels)
    model = SoftmaxRegression(tol=1e-6, class_weight="balanced").fit(
        torch.from_numpy(X.astype(np.float32)), labels
    )
    assert model.coef_.dtype == torch.float32
    assert isinstance(model.classes_, np.ndarray)  # labels were NumPy strings
    proba = model.predict_proba(torch.from_numpy(X.astype(np.float32)))
    assert proba.dtype == torch.float32
    assert np.max(np.abs(proba.numpy() - reference.predict_proba(X))) <= 1e-4
    predicted = model.predict(torch.from_numpy(X.astype(np.float32)))
    np.testing.assert_array_equal(predicted, reference.predict(X))
    scores = model.decision_function(torch.from_numpy(X.astype(np.float32)))
    assert isinstance(scores, torch.Tensor) and tuple(scores.shape) == (len(y), 3)


def test_torch_bad_input(problem):
    X, y, _ = problem
    bad = torch.from_numpy(X.copy())
    bad[5, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().fit(bad, torch.from_numpy(y))
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxRegression().fit(torch.from_numpy(X), torch.zeros(len(y), dtype=torch.int64))
    with pytest.raises(ValueError, match="samples"):
        SoftmaxRegression().fit(torch.from_numpy(X), torch.from_numpy(y[:-1]))
    model = SoftmaxRegression().fit(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(ValueError, match="features"):
        model.predict(torch.from_numpy(X[:, :3]))
