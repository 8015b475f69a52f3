"""partial_fit: the stochastic solver on the true softmax objective, against the batch fit."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression


def _digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _objective(model, X, y, C):
    """DESIGN.md's objective over C * n: mean log-loss + ||W||^2 / (2 C n), from the
    predicted probabilities (scikit-learn's log_loss, not the library's loss)."""
    return log_loss(y, model.predict_proba(X)) + 0.5 * np.sum(model.coef_**2) / (C * len(y))


def test_thirty_epochs_of_sixty_minibatches_reach_the_batch_optimum():
    X, y = _digits()
    C = 0.1
    batch = SoftmaxRegression(C=C, tol=1e-10).fit(X, y)
    optimum = log_loss(y, batch.predict_proba(X))
    model = SoftmaxRegression(C=C)
    rng = np.random.default_rng(0)
    classes = np.unique(y)
    for _ in range(30):
        for part in np.array_split(rng.permutation(len(y)), 60):
            model.partial_fit(X[part], y[part], classes=classes, n_samples_total=len(y))
    reached = log_loss(y, model.predict_proba(X))
    assert abs(reached - optimum) <= 0.01 * optimum
    # and the objective, which the solver minimises, is within 1% of the optimum too
    assert _objective(model, X, y, C) <= 1.01 * _objective(batch, X, y, C)
    assert model.n_iter_ == 1800
    assert model.solver_ == "adam"
    np.testing.assert_array_equal(model.classes_, classes)


def test_partial_fit_is_the_softmax_objective_not_one_vs_rest():
    # one step from zero moves every class's row by Adam's first step: the sign of the
    # softmax gradient sum_i (p_ik - [y_i = k]) x_i with p = 1/K, computed here by hand
    X, y = _digits()
    X, y = X[:200], y[:200]
    model = SoftmaxRegression(C=1.0, fit_intercept=False).partial_fit(X, y)
    K = 10
    residual = np.full((len(y), K), 1.0 / K)
    residual[np.arange(len(y)), y] -= 1
    gradient = residual.T @ X / len(y)
    expected_sign = np.sign(gradient - gradient.mean(axis=0))
    moved = -model.coef_
    big = np.abs(gradient - gradient.mean(axis=0)) > 1e-3
    assert np.all(np.sign(moved[big]) == expected_sign[big])


def test_fit_then_partial_fit_continues_near_the_optimum():
    X, y = _digits()
    batch = SoftmaxRegression(C=0.1, tol=1e-10).fit(X, y)
    optimum = log_loss(y, batch.predict_proba(X))
    model = SoftmaxRegression(C=0.1, tol=1e-10).fit(X, y)
    rng = np.random.default_rng(1)
    for part in np.array_split(rng.permutation(len(y)), 60):
        model.partial_fit(X[part], y[part], n_samples_total=len(y))
    # Adam restarts without moments, so its first steps are noisy: within 10%, not 1%
    assert abs(log_loss(y, model.predict_proba(X)) - optimum) <= 0.1 * optimum


def test_partial_fit_then_warm_fit_reaches_the_batch_coefficients():
    X, y = _digits()
    batch = SoftmaxRegression(C=0.1, tol=1e-10).fit(X, y)
    model = SoftmaxRegression(C=0.1, tol=1e-10, warm_start=True)
    model.partial_fit(X[:600], y[:600], classes=np.unique(y))
    model.fit(X, y)
    assert np.max(np.abs(model.predict_proba(X) - batch.predict_proba(X))) <= 1e-6


def test_partial_fit_errors():
    X, y = _digits()
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxRegression().partial_fit(X[y == 0], y[y == 0])
    model = SoftmaxRegression().partial_fit(X[:100], y[:100], classes=np.arange(10))
    with pytest.raises(ValueError, match="not among"):
        model.partial_fit(X[:10], y[:10] + 20)
    with pytest.raises(ValueError, match="differ"):
        model.partial_fit(X[:10], y[:10], classes=np.arange(11))
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:10, :5], y[:10])
    with pytest.raises(ValueError, match="partial_fit supports penalty"):
        SoftmaxRegression(penalty="l1").partial_fit(X[:10], y[:10])
    bad = X[:100].copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().partial_fit(bad, y[:100])
