"""SoftmaxRegressionCV: scikit-learn's estimator checks, agreement with LogisticRegressionCV."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning, SkipTestWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_estimator,
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
)

from softmaxreg import SoftmaxRegressionCV

# The two checks compare predictions of a weighted and a repeated-sample fit to rtol=1e-7
# on 15 samples with 30 features, up to C=1e4 (nearly unregularised, separable): the
# default tol=1e-6 leaves more than 1e-7 of slack in the sparse solutions there, so they
# run separately below with a tolerance tight enough for that comparison.
_WEIGHT_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": "run at tol=1e-10 in its own test",
    "check_sample_weight_equivalence_on_sparse_data": "run at tol=1e-10 in its own test",
}


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_check_estimator_l2():
    with warnings.catch_warnings():  # no check skips itself (see tests/conftest.py)
        warnings.simplefilter("error", SkipTestWarning)
        check_estimator(SoftmaxRegressionCV(Cs=3, cv=3))


def test_check_estimator_l1():
    check_estimator(
        SoftmaxRegressionCV(Cs=2, cv=2, penalty="l1"), expected_failed_checks=_WEIGHT_CHECKS
    )


@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data],
)
def test_sample_weight_equivalence_l1(check):
    # Up to C=1e3: at C=1e4 these 15 separable samples leave directions so flat that fits
    # stopped at the precision of float64 (violation 1e-17 and 6e-14) differ by 1e-7 relative
    # in decision values, the check's own tolerance.
    check(
        "SoftmaxRegressionCV",
        SoftmaxRegressionCV(Cs=[0.01, 1.0, 1000.0], cv=3, penalty="l1", tol=1e-10),
    )


def test_check_estimator_grouped_smoke():
    """The grouped penalty with a grid of l1_ratios through the main checks."""
    check_estimator(
        SoftmaxRegressionCV(Cs=2, cv=2, penalty="grouped", l1_ratios=[0.5, 0.9]),
        expected_failed_checks=_WEIGHT_CHECKS,
    )


def _sklearn_cv(X, y, Cs, l1_ratio, solver, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegressionCV(
            Cs=Cs,
            cv=StratifiedKFold(5),
            l1_ratios=(l1_ratio,),
            solver=solver,
            scoring="accuracy",
            use_legacy_attributes=False,
            **kwargs,
        ).fit(X, y)


def _within_one_step(C_a, C_b, Cs):
    return abs(np.searchsorted(Cs, C_a) - np.searchsorted(Cs, C_b)) <= 1


def test_agrees_with_logistic_regression_cv_l2():
    X, y = load_iris(return_X_y=True)
    Cs = np.logspace(-3, 3, 7)
    theirs = _sklearn_cv(X, y, Cs, 0.0, "lbfgs", tol=1e-10, max_iter=10_000)
    ours = SoftmaxRegressionCV(Cs=Cs, cv=StratifiedKFold(5), tol=1e-10).fit(X, y)
    assert _within_one_step(ours.C_, theirs.C_, Cs)
    np.testing.assert_allclose(ours.scores_, theirs.scores_, atol=1e-12)
    assert ours.scores_.shape == (5, 1, 7)
    # The refit model is scikit-learn's at the chosen C (its exact Newton solver: lbfgs stops
    # short of the optimum here).
    reference = LogisticRegression(C=ours.C_, solver="newton-cholesky", tol=1e-12).fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-5)


def test_agrees_with_logistic_regression_cv_l1(wine):
    X, y = wine
    Cs = np.logspace(-2, 1, 4)
    # SAGA samples rows at random: a fixed seed keeps this comparison deterministic
    theirs = _sklearn_cv(X, y, Cs, 1.0, "saga", tol=1e-8, max_iter=20_000, random_state=0)
    ours = SoftmaxRegressionCV(Cs=Cs, cv=StratifiedKFold(5), penalty="l1", tol=1e-9).fit(X, y)
    assert _within_one_step(ours.C_, theirs.C_, Cs)
    np.testing.assert_allclose(ours.scores_, theirs.scores_, atol=0.03)
    reference = LogisticRegression(
        C=ours.C_, l1_ratio=1.0, solver="saga", tol=1e-12, max_iter=100_000, random_state=0
    ).fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-5)
    assert ours.l1_ratio_ is None and ours.l1_ratios_ is None


def test_elasticnet_grid_of_l1_ratios(wine):
    X, y = wine
    model = SoftmaxRegressionCV(
        Cs=[0.01, 0.1, 1.0], l1_ratios=[0.2, 1.0], penalty="elasticnet", cv=3
    ).fit(X, y)
    assert model.scores_.shape == (3, 2, 3)
    assert model.coefs_paths_.shape == (3, 2, 3, 3, X.shape[1] + 1)
    assert model.n_iter_.shape == (3, 2, 3) and np.all(model.n_iter_ >= 1)
    assert model.l1_ratio_ in (0.2, 1.0) and model.C_ in (0.01, 0.1, 1.0)
    best = np.unravel_index(np.argmax(model.scores_.mean(axis=0)), (2, 3))
    assert (model.l1_ratio_, model.C_) == ([0.2, 1.0][best[0]], [0.01, 0.1, 1.0][best[1]])
    assert model.predict_proba(X).shape == (len(y), 3)


def test_refit_false_averages_the_folds(wine):
    X, y = wine
    Cs = [0.01, 0.1, 1.0]
    model = SoftmaxRegressionCV(Cs=Cs, cv=3, penalty="l1", refit=False).fit(X, y)
    best = [np.unravel_index(np.argmax(fold), fold.shape) for fold in model.scores_]
    expected = np.mean([model.coefs_paths_[f, r, c] for f, (r, c) in enumerate(best)], axis=0)
    np.testing.assert_allclose(model.coef_, expected[:, :-1])
    assert model.C_ == pytest.approx(np.mean([Cs[c] for _, c in best]))


def test_sparse_input_and_string_labels(wine):
    X, y = wine
    labels = np.array(["a", "b", "c"])[y]
    # (A grid without C=1e4: that nearly unregularised end of a separable problem is
    # determined only to the tolerance, and dense and sparse sums round differently.)
    Cs = [0.01, 0.1, 1.0]
    dense = SoftmaxRegressionCV(Cs=Cs, cv=3, penalty="l1").fit(X, labels)
    csr = SoftmaxRegressionCV(Cs=Cs, cv=3, penalty="l1").fit(sp.csr_matrix(X), labels)
    assert dense.C_ == csr.C_
    np.testing.assert_allclose(dense.scores_, csr.scores_)
    assert set(dense.predict(X)) <= {"a", "b", "c"}


def test_a_class_missing_from_a_training_fold():
    """A class with one sample is absent from one training fold: that fold's models give it
    probability 0, and the final model still knows every class."""
    X, y = load_iris(return_X_y=True)
    X, y = np.vstack([X, X[:1] + 0.1]), np.append(y, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # StratifiedKFold: a class of 1 sample
        model = SoftmaxRegressionCV(Cs=3, cv=3, penalty="l1").fit(X, y)
    assert np.isneginf(model.coefs_paths_[:, 0, :, 3, -1]).any()
    assert model.predict_proba(X).shape == (len(y), 4)
    assert np.all(np.isfinite(model.coef_))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"penalty": "elasticnet"}, ValueError, "needs l1_ratios"),
        ({"penalty": "l1", "l1_ratios": [0.5]}, ValueError, "only used with"),
        ({"penalty": "grouped", "l1_ratios": [1.5]}, ValueError, "l1_ratio must lie"),
        ({"Cs": -3}, ValueError, "Cs must be"),
        ({"Cs": [0.0, 1.0]}, ValueError, "positive finite"),
        ({"penalty": "l1", "solver": "lbfgs"}, ValueError, "does not support"),
        ({"refit": "yes"}, TypeError, "refit must be a bool"),
    ],
)
def test_bad_parameters(wine, kwargs, error, message):
    X, y = wine
    with pytest.raises(error, match=message):
        SoftmaxRegressionCV(**kwargs).fit(X, y)


@pytest.mark.parametrize(
    "target, message",
    [
        ("one class", "SoftmaxRegressionCV needs samples of at least 2 classes"),
        ("continuous", "Unknown label type"),
    ],
)
def test_bad_targets_name_the_problem(wine, target, message):
    X, y = wine
    bad = np.zeros(len(y)) if target == "one class" else np.linspace(0.1, 0.9, len(y))
    with pytest.raises(ValueError, match=message):
        SoftmaxRegressionCV(Cs=[0.1, 1.0], cv=3).fit(X, bad)
