"""The path's predicted starts, its shared objective caches and the CV's direct accuracy."""

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from softmaxreg import SoftmaxRegression, SoftmaxRegressionCV
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._path import path_accuracy, predicted_start, solve_path
from softmaxreg._penalties import Penalty


def _problem(n=300, d=5, K=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ rng.standard_normal((d, K)) + rng.gumbel(size=(n, K)), axis=1)
    return X, y


def test_predicted_start_is_exact_on_a_quadratic_in_log_C():
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal((3, 4)) for _ in range(3))
    a[0, 1] = b[0, 1] = c[0, 1] = 0.0  # a coefficient that is zero all along the path

    def curve(t):
        return a + b * t + c * t * t

    log_Cs = np.log([0.1, 0.5, 2.0])
    guess = predicted_start([curve(t) for t in log_Cs], log_Cs, np.log(10.0))
    np.testing.assert_allclose(guess, curve(np.log(10.0)), rtol=1e-12, atol=1e-12)
    assert guess[0, 1] == 0.0
    # with two solutions it is the line through them
    line = predicted_start([curve(t) for t in log_Cs[:2]], log_Cs[:2], log_Cs[2])
    slope = (curve(log_Cs[1]) - curve(log_Cs[0])) / (log_Cs[1] - log_Cs[0])
    np.testing.assert_allclose(line, curve(log_Cs[1]) + slope * (log_Cs[2] - log_Cs[1]))


@pytest.mark.parametrize("penalty, ratio", [("l2", None), ("l1", None)])
def test_path_with_predicted_starts_reaches_every_single_fit(penalty, ratio):
    X, y = _problem()
    Cs = np.logspace(-2, 2, 7)
    pen = Penalty.from_params(penalty, ratio)
    path, _, converged, _ = solve_path(X, y, 3, None, True, Cs, pen, "auto", 1e-9, 1000)
    assert converged.all()
    for C, params in zip(Cs, path, strict=True):
        single = SoftmaxRegression(C=C, penalty=penalty, tol=1e-9).fit(X, y)
        objective = SoftmaxObjective(X, y, 3, None, True, C, pen)
        reference = np.hstack([single.coef_, single.intercept_[:, None]])
        assert objective.value(params) == pytest.approx(objective.value(reference), rel=1e-8)


def test_with_C_shares_data_caches_and_rescales_the_penalty():
    X, y = _problem()
    objective = SoftmaxObjective(X, y, 3, None, True, 1.0, Penalty.from_params("l2", None))
    gram = objective.feature_gram()
    other = objective.with_C(4.0)
    assert other.feature_gram() is gram
    assert other.l2_strength == pytest.approx(objective.l2_strength / 4)
    params = np.random.default_rng(2).standard_normal(objective.shape)
    # the data part of F does not depend on C; penalty_value is the rest
    data_part = objective.value(params) - objective.penalty_value(params)
    assert other.value(params) - other.penalty_value(params) == pytest.approx(data_part)
    assert objective.C == 1.0


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_default_cv_scores_equal_the_accuracy_scorer(weighted, fit_intercept):
    X, y = _problem(n=240, K=4, seed=3)
    sample_weight = np.random.default_rng(4).uniform(0.5, 2.0, len(y)) if weighted else None
    common = dict(Cs=[0.01, 0.1, 1.0, 10.0], cv=StratifiedKFold(3), fit_intercept=fit_intercept)
    direct = SoftmaxRegressionCV(**common).fit(X, y, sample_weight=sample_weight)
    scorer = SoftmaxRegressionCV(scoring="accuracy", **common).fit(
        X, y, sample_weight=sample_weight
    )
    np.testing.assert_array_equal(direct.scores_, scorer.scores_)
    assert direct.C_ == scorer.C_


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_default_cv_scores_equal_the_accuracy_scorer_with_a_class_missing(fit_intercept):
    """A class of two samples is absent from some training folds: its intercept is -inf
    there, with or without a fitted intercept, and the direct accuracy agrees."""
    X, y = _problem(n=120, K=3, seed=5)
    X, y = np.vstack([X, X[:2] + 0.1]), np.append(y, [3, 3])
    common = dict(Cs=[0.1, 1.0, 10.0], cv=KFold(3), fit_intercept=fit_intercept)
    direct = SoftmaxRegressionCV(**common).fit(X, y)
    scorer = SoftmaxRegressionCV(scoring="accuracy", **common).fit(X, y)
    assert np.isneginf(direct.coefs_paths_[..., 3, :]).any() or not fit_intercept
    np.testing.assert_array_equal(direct.scores_, scorer.scores_)


def test_path_accuracy_counts_correct_rows():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    coefs = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    intercepts = np.array([[0.0, 0.5], [0.0, 0.0]])
    y = np.array([0, 1, 1])
    # first solution predicts [0, 1, 1], second [1, 0, 0] (ties go to the first class)
    np.testing.assert_allclose(path_accuracy(coefs, intercepts, X, y), [1.0, 0.0])
    weights = np.array([1.0, 2.0, 1.0])
    np.testing.assert_allclose(path_accuracy(coefs, intercepts, X, y, weights), [1.0, 0.0])
