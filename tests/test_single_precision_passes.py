"""Float32 passes of Newton-CG on float64 dense X: the pass agrees with SciPy's float64
softmax to float32's rounding, its Hessian operator with the Hessian formed whole, and a fit
that uses them while far from the optimum ends at the optimum of one that never does, its
stopping test and last passes in float64."""

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers._result import center_classes
from softmaxreg._solvers.newton_cg import newton_cg


def _objective(weighted, fit_intercept, n=900):
    X, y = make_classification(n, 15, n_informative=10, n_redundant=2, n_classes=5, random_state=0)
    weights = None
    if weighted:
        weights = np.random.default_rng(1).uniform(0.2, 3.0, size=n)
    return SoftmaxObjective(X, y, 5, weights, fit_intercept, 1.0, Penalty("l2"))


def _reference(objective, params):
    """``F_smooth`` and its gradient in float64 from SciPy's log-softmax, in the test."""
    X, y, weights = objective.X, objective.y, objective.sample_weight
    weights = np.ones(len(y)) if weights is None else weights
    design = np.hstack([X, np.ones((len(y), 1))]) if objective.fit_intercept else X
    log_proba = log_softmax(design @ params.T, axis=1)
    residual = np.exp(log_proba)
    residual[np.arange(len(y)), y] -= 1
    S = weights.sum()
    coef = params[:, :-1] if objective.fit_intercept else params
    value = -(weights * log_proba[np.arange(len(y)), y]).sum() / S
    value += 0.5 * objective.l2_strength * (coef**2).sum()
    gradient = (residual * weights[:, None]).T @ design / S
    gradient[:, : coef.shape[1]] += objective.l2_strength * coef
    return value, gradient


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_a_float32_pass_agrees_with_float64_to_its_rounding(weighted, fit_intercept):
    objective = _objective(weighted, fit_intercept)
    assert objective.single_precision_passes()
    params = center_classes(np.random.default_rng(2).standard_normal(objective.shape))
    value, gradient, hessp = objective.loss_gradient_hessp(params, single=True)
    expected_value, expected_gradient = _reference(objective, params)
    assert gradient.dtype == np.float64 and hessp._data.proba.dtype == np.float32
    assert value == pytest.approx(expected_value, rel=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-6)
    # its operator is the float32 product's: the same as float64's to float32 rounding
    _, _, hessp64 = objective.loss_gradient_hessp(params)
    direction = center_classes(np.random.default_rng(3).standard_normal(objective.shape))
    expected_product = hessp64(direction)
    np.testing.assert_allclose(
        hessp(direction), expected_product, rtol=1e-4, atol=1e-5 * np.abs(expected_product).max()
    )
    hessp.float32_products()  # newton-cg asks; the operator is float32 already
    assert hessp._products is hessp._data


def test_float32_passes_only_for_float64_numpy_x():
    objective = _objective(False, True)
    assert objective.single_precision_passes()
    as_float32 = SoftmaxObjective(
        objective.X.astype(np.float32), objective.y, 5, None, True, 1.0, Penalty("l2")
    )
    assert not as_float32.single_precision_passes()


def _digits_objective():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return SoftmaxObjective(X, y, 10, None, True, 1.0, Penalty("l2"))


def _spy_passes(monkeypatch, objective):
    """Record each pass's precision: "S" float32, "D" float64, "L" a float64 loss only."""
    passes = []
    loss_gradient_hessp, loss = objective.loss_gradient_hessp, objective.loss

    def spied_pass(params, single=False):
        passes.append("S" if single else "D")
        return loss_gradient_hessp(params, single)

    def spied_loss(params):
        passes.append("L")
        return loss(params)

    monkeypatch.setattr(objective, "loss_gradient_hessp", spied_pass)
    monkeypatch.setattr(objective, "loss", spied_loss)
    return passes


@pytest.mark.parametrize("tol", [1e-5, 1e-9])
def test_a_fit_with_float32_passes_ends_at_the_float64_optimum(monkeypatch, tol):
    objective = _digits_objective()
    passes = _spy_passes(monkeypatch, objective)
    result = newton_cg(objective, objective.initial_params(), tol=tol)
    # float32 while far, then a float64 value at the switch, float64 to the end
    switch = passes.index("L")
    assert set(passes[:switch]) == {"S"} and switch >= 3
    assert set(passes[switch + 1 :]) == {"D"}
    assert result.converged
    # the stopping test read the float64 gradient at the parameters returned
    expected_value, expected_gradient = _reference(objective, result.params)
    assert result.gradient_norm == pytest.approx(np.abs(expected_gradient).max(), rel=1e-6)
    assert result.objective == pytest.approx(expected_value, rel=1e-12)

    float64_only = _digits_objective()
    monkeypatch.setattr(float64_only, "single_precision_passes", lambda: False)
    reference = newton_cg(float64_only, float64_only.initial_params(), tol=1e-10)
    gap = (result.objective - reference.objective) / reference.objective
    assert -1e-14 <= gap < (1e-7 if tol == 1e-5 else 1e-12)


def test_a_start_at_the_optimum_is_confirmed_in_float64(monkeypatch):
    objective = _digits_objective()
    optimum = newton_cg(objective, objective.initial_params(), tol=1e-9).params
    passes = _spy_passes(monkeypatch, objective)
    result = newton_cg(objective, optimum, tol=1e-6)
    assert result.n_iter == 0 and result.converged
    assert passes == ["S", "D"]
    _, expected_gradient = _reference(objective, result.params)
    assert result.gradient_norm == pytest.approx(np.abs(expected_gradient).max(), rel=1e-6)


def test_the_estimator_on_float64_and_float32_x_agrees():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    float64_fit = SoftmaxRegression(C=1.0, tol=1e-8).fit(X, y)
    float32_fit = SoftmaxRegression(C=1.0, tol=1e-8).fit(X.astype(np.float32), y)
    np.testing.assert_allclose(float64_fit.coef_, float32_fit.coef_, atol=2e-3)
