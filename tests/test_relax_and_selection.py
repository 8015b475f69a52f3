"""Relaxed fits, the 1-SE rule, weighted CV scores, parallel folds, per-C convergence.

Outside references: scikit-learn's unpenalised and L2 ``LogisticRegression`` on the support
(relaxed fits), the 1-SE rule and weighted means computed by hand from the stored scores and
paths.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from softmaxreg import SoftmaxRegressionCV, regularization_path

FIXTURE = Path(__file__).parent / "fixtures" / "glmnet_reference.json"


@pytest.fixture(scope="module")
def noisy():
    """120 x 6, three overlapping classes (the glmnet fixture's data): the unpenalised fit
    exists on every support."""
    data = json.loads(FIXTURE.read_text())
    return np.array(data["X"]), np.array(data["y"]).astype(int), np.array(data["weights"])


def _support(coef):
    return np.flatnonzero(np.any(coef != 0, axis=0))


@pytest.mark.parametrize(("penalty", "l1_ratio"), [("l1", None), ("grouped", 1.0)])
def test_relaxed_fit_equals_unpenalised_fit_on_the_support(noisy, penalty, l1_ratio):
    X, y, _ = noisy
    Cs = [0.005, 0.02, 0.08, 1.0]
    # (tol=1e-10: the smooth solvers' default tol bounds the gradient, not the coefficients)
    path = regularization_path(
        X, y, Cs=Cs, penalty=penalty, l1_ratio=l1_ratio, relax=True, tol=1e-10
    )
    assert path.relaxed_converged.all()
    sizes = [len(_support(coef)) for coef in path.coefs]
    assert sizes[0] < sizes[-1]  # supports of several sizes are refitted
    for coef, relaxed, intercept in zip(
        path.coefs, path.relaxed_coefs, path.relaxed_intercepts, strict=True
    ):
        support = _support(coef)
        off = np.setdiff1d(np.arange(X.shape[1]), support)
        np.testing.assert_array_equal(relaxed[:, off], 0.0)
        if len(support) == 0:
            freq = np.bincount(y) / len(y)
            np.testing.assert_allclose(intercept, np.log(freq) - np.log(freq).mean(), atol=1e-7)
            continue
        reference = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12).fit(
            X[:, support], y
        )
        # scikit-learn's unpenalised parameters are centred over classes, as ours
        np.testing.assert_allclose(relaxed[:, support], reference.coef_, atol=1e-5)
        np.testing.assert_allclose(
            intercept, reference.intercept_ - reference.intercept_.mean(), atol=1e-5
        )


def test_relaxed_fit_with_a_light_ridge(noisy):
    """``relax=C_relax``: the refit is the L2 fit at that C on the support."""
    X, y, weights = noisy
    path = regularization_path(
        X, y, Cs=[0.02], penalty="l1", relax=5.0, sample_weight=weights, tol=1e-10
    )
    support = _support(path.coefs[0])
    assert 0 < len(support) < X.shape[1]
    reference = LogisticRegression(C=5.0, solver="newton-cholesky", tol=1e-12).fit(
        X[:, support], y, sample_weight=weights
    )
    np.testing.assert_allclose(path.relaxed_coefs[0][:, support], reference.coef_, atol=1e-6)


def test_path_without_relax_has_no_relaxed_record(noisy):
    X, y, _ = noisy
    path = regularization_path(X, y, Cs=[0.1], penalty="l1")
    assert path.relaxed_coefs is None and path.relaxed_converged is None


@pytest.mark.parametrize("relax", ["yes", 0.0, -1.0, np.inf])
def test_bad_relax(noisy, relax):
    X, y, _ = noisy
    with pytest.raises(ValueError, match="relax must be"):
        regularization_path(X, y, Cs=[0.1], relax=relax)
    with pytest.raises(ValueError, match="relax must be"):
        SoftmaxRegressionCV(Cs=[0.1], relax=relax).fit(X, y)


def test_cv_relax_scores_and_final_model(noisy):
    """With relax, the CV scores are those of the refits, and the final model is the refit
    on the support of the penalised fit at C_."""
    X, y, _ = noisy
    Cs = [0.003, 0.01, 0.03, 0.3]
    model = SoftmaxRegressionCV(
        Cs=Cs, cv=StratifiedKFold(3), penalty="l1", relax=True, scoring="neg_log_loss", tol=1e-9
    ).fit(X, y)
    folds = list(StratifiedKFold(3).split(X, y))
    for f, (train, test) in enumerate(folds):
        path = regularization_path(
            X[train], y[train], Cs=Cs, penalty="l1", relax=True, tol=1e-9
        )
        for c in range(len(Cs)):
            scores = X[test] @ path.relaxed_coefs[c].T + path.relaxed_intercepts[c]
            log_proba = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
            expected = log_proba[np.arange(len(test)), y[test]].mean()
            assert model.scores_[f, 0, c] == pytest.approx(expected, rel=1e-6)
    final = regularization_path(X, y, Cs=[model.C_], penalty="l1", relax=True, tol=1e-9)
    np.testing.assert_allclose(model.coef_, final.relaxed_coefs[0], atol=1e-6)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_one_standard_error_rule(noisy, penalty):
    X, y, _ = noisy
    Cs = np.logspace(-3, 1, 9)
    cv = StratifiedKFold(5)
    chosen = SoftmaxRegressionCV(
        Cs=Cs, cv=cv, penalty=penalty, selection="1se", scoring="neg_log_loss"
    ).fit(X, y)
    best = SoftmaxRegressionCV(Cs=Cs, cv=cv, penalty=penalty, scoring="neg_log_loss").fit(X, y)
    np.testing.assert_allclose(chosen.scores_, best.scores_)
    # By hand: the best mean, its standard error over the 5 folds, the smallest C within it.
    folds = chosen.scores_[:, 0, :]
    means = folds.sum(axis=0) / 5
    top = int(np.argmax(means))
    deviations = folds[:, top] - means[top]
    standard_error = np.sqrt((deviations**2).sum() / 4) / np.sqrt(5)
    eligible = [c for c in range(len(Cs)) if means[c] >= means[top] - standard_error]
    assert chosen.C_ == Cs[eligible[0]]
    assert best.C_ == Cs[top]
    assert chosen.C_ <= best.C_


def test_one_standard_error_with_l1_ratios(noisy):
    X, y, _ = noisy
    Cs = np.logspace(-3, 0, 5)
    model = SoftmaxRegressionCV(
        Cs=Cs, l1_ratios=[0.3, 1.0], penalty="elasticnet", cv=3, selection="1se"
    ).fit(X, y)
    means = model.scores_.mean(axis=0)
    r, top = np.unravel_index(np.argmax(means), means.shape)
    standard_error = model.scores_[:, r, top].std(ddof=1) / np.sqrt(3)
    c = np.flatnonzero(means[r] >= means[r, top] - standard_error)[0]
    assert (model.l1_ratio_, model.C_) == ([0.3, 1.0][r], Cs[c])


def test_bad_selection(noisy):
    X, y, _ = noisy
    with pytest.raises(ValueError, match="selection must be"):
        SoftmaxRegressionCV(Cs=[0.1], selection="best").fit(X, y)


@pytest.mark.parametrize("scoring", [None, "neg_log_loss"])
def test_weighted_cv_scores_are_weighted_means(noisy, scoring):
    """Held-out scores with sample_weight: the weighted mean over the test fold, by hand."""
    X, y, weights = noisy
    Cs = [0.01, 0.1, 1.0]
    model = SoftmaxRegressionCV(
        Cs=Cs, cv=StratifiedKFold(4), penalty="l1", scoring=scoring
    ).fit(X, y, sample_weight=weights)
    for f, (_, test) in enumerate(StratifiedKFold(4).split(X, y)):
        w = weights[test]
        for c in range(len(Cs)):
            params = model.coefs_paths_[f, 0, c]
            scores = X[test] @ params[:, :-1].T + params[:, -1]
            if scoring is None:
                per_sample = (np.argmax(scores, axis=1) == y[test]).astype(float)
            else:
                log_proba = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
                per_sample = log_proba[np.arange(len(test)), y[test]]
            expected = (w * per_sample).sum() / w.sum()
            assert model.scores_[f, 0, c] == pytest.approx(expected, rel=1e-9, abs=1e-12)
            unweighted = per_sample.mean()
            if not np.isclose(expected, unweighted):
                assert not np.isclose(model.scores_[f, 0, c], unweighted)


@pytest.mark.parametrize("scoring", ["neg_log_loss", "neg_brier_score"])
def test_cv_scores_folds_that_lack_a_class(scoring):
    """An unshuffled KFold on sorted labels leaves classes out of held-out folds: the scorer
    still counts the model's columns as all the classes (a hand computation), no error."""
    from sklearn.metrics import brier_score_loss, log_loss
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.repeat(np.array(["a", "b", "c"]), [28, 28, 4])
    Cs = [0.1, 1.0]
    model = SoftmaxRegressionCV(Cs=Cs, cv=KFold(5), scoring=scoring).fit(X, y)
    for f, (_, test) in enumerate(KFold(5).split(X, y)):
        assert len(np.unique(y[test])) < 3
        for c in range(len(Cs)):
            params = model.coefs_paths_[f, 0, c]
            scores = X[test] @ params[:, :-1].T + params[:, -1]
            proba = np.exp(scores - np.logaddexp.reduce(scores, axis=1, keepdims=True))
            if scoring == "neg_log_loss":
                expected = -log_loss(y[test], proba, labels=model.classes_)
            else:
                expected = -brier_score_loss(y[test], proba, labels=model.classes_)
            assert model.scores_[f, 0, c] == pytest.approx(expected, rel=1e-9)


def test_parallel_folds_equal_sequential(noisy):
    X, y, weights = noisy
    kwargs = {"Cs": [0.01, 0.1], "cv": 3, "penalty": "l1", "scoring": "neg_log_loss"}
    sequential = SoftmaxRegressionCV(**kwargs).fit(X, y, sample_weight=weights)
    parallel = SoftmaxRegressionCV(n_jobs=2, **kwargs).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(parallel.scores_, sequential.scores_)
    np.testing.assert_array_equal(parallel.coef_, sequential.coef_)


def test_path_warning_names_the_cs_that_did_not_converge(noisy):
    X, y, _ = noisy
    with pytest.warns(ConvergenceWarning, match=r"did not converge at C = \[.*100") as caught:
        path = regularization_path(X, y, Cs=[1e-4, 100.0], penalty="l1", max_iter=1)
    assert path.converged.tolist() == [True, False]
    assert "0.0001" not in str(caught[0].message)


def test_cv_warning_names_the_cs(noisy):
    X, y, _ = noisy
    with pytest.warns(ConvergenceWarning, match=r"at C = \[100\]"):
        model = SoftmaxRegressionCV(Cs=[1e-4, 100.0], cv=3, penalty="l1", max_iter=1).fit(X, y)
    assert model.converged_paths_.shape == (3, 1, 2)
    assert model.converged_paths_[:, 0, 0].all() and not model.converged_paths_[:, 0, 1].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SoftmaxRegressionCV(Cs=[1e-4, 0.01], cv=3, penalty="l1").fit(X, y)
