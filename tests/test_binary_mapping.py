"""Two classes: the documented mapping to scikit-learn's binary ``LogisticRegression``.

scikit-learn fits one vector ``beta`` for K = 2; ``SoftmaxRegression`` keeps a row per class.
The README and the docstring state that ``SoftmaxRegression(C, l1_ratio=r)`` equals
``LogisticRegression(C=2C/(1+r), l1_ratio=2r/(1+r))`` with ``beta = coef_[1] - coef_[0]``;
scikit-learn's own solvers are the reference here.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from softmaxreg import SoftmaxRegression


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _mapped(C: float, ratio: float) -> tuple[float, float]:
    return 2 * C / (1 + ratio), 2 * ratio / (1 + ratio)


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_l2_binary_fit_equals_scikit_learn_at_twice_c(cancer, C):
    X, y = cancer
    ours = SoftmaxRegression(C=C, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.coef_[0], -ours.coef_[1], atol=1e-12)
    same_c = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    assert np.max(np.abs(ours.predict_proba(X) - same_c.predict_proba(X))) > 0.01
    mapped_c, _ = _mapped(C, 0.0)
    theirs = LogisticRegression(C=mapped_c, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_[1] - ours.coef_[0], theirs.coef_[0], atol=1e-5)
    np.testing.assert_allclose(
        ours.intercept_[1] - ours.intercept_[0], theirs.intercept_[0], atol=1e-5
    )


@pytest.mark.parametrize(
    ("penalty", "ratio", "solver"), [("l1", 1.0, "liblinear"), ("elasticnet", 0.3, "saga")]
)
def test_l1_and_elasticnet_binary_mapping(cancer, penalty, ratio, solver):
    """Without an intercept (liblinear would penalise it): C' = C for L1, and
    C' = 2C/(1+r), l1_ratio' = 2r/(1+r) for the elastic net."""
    X, y = cancer
    C = 0.2
    ours = SoftmaxRegression(
        C=C,
        penalty=penalty,
        l1_ratio=None if penalty == "l1" else ratio,
        fit_intercept=False,
        tol=1e-10,
        max_iter=10_000,
    ).fit(X, y)
    mapped_c, mapped_ratio = _mapped(C, ratio)
    theirs = LogisticRegression(
        C=mapped_c,
        l1_ratio=mapped_ratio,
        solver=solver,
        fit_intercept=False,
        tol=1e-12,
        max_iter=100_000,
    ).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_[1] - ours.coef_[0], theirs.coef_[0], atol=1e-5)
