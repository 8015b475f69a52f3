"""Extreme but finite input: predictions are finite and right, or a clear error.

The reference for rows near 1e308 is exact arithmetic: the scores and the softmax computed
with ``decimal`` at 60 digits from the very float64 values of the features and coefficients.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris

from softmaxreg import SoftmaxRegression, SoftmaxRegressionCV


def exact_predictions(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
    """(scores as floats, probabilities) of every row, computed in 60-digit decimals."""
    scores, proba = [], []
    with localcontext() as context:
        context.prec = 60
        context.Emax = 10**9
        context.Emin = -(10**9)
        for row in X:
            exact = [
                sum(
                    Decimal(float(x)) * Decimal(float(w)) for x, w in zip(row, weights, strict=True)
                )
                + Decimal(float(b))
                for weights, b in zip(coef, intercept, strict=True)
            ]
            top = max(exact)
            exps = [(value - top).exp() for value in exact]
            total = sum(exps)
            scores.append([float(value) for value in exact])  # +-inf beyond the float range
            proba.append([float(value / total) for value in exps])
    return np.array(scores), np.array(proba)


@pytest.fixture(scope="module")
def model():
    X, y = load_iris(return_X_y=True)
    return SoftmaxRegression().fit(X, y)


def _extreme_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack(
        [
            np.full((1, 4), 1e308),
            [[1e308, -1e308, 1e308, -1e308]],
            [[-1e308, 0.0, 0.0, 1e308]],
            rng.choice([-1.0, 1.0], size=(5, 4)) * 10.0 ** rng.uniform(300, 308, size=(5, 4)),
            [[1e200, 0.0, 0.0, 0.0]],  # overflows only after the product with some classes
            [[5.1, 3.5, 1.4, 0.2]],  # an ordinary row in the same call
        ]
    )


# scikit-learn's finiteness check sums float32 rows of 3e38 and warns of the overflow
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@pytest.mark.parametrize("layout", ["dense", "sparse", "float32"])
def test_rows_near_the_float_limit_give_exact_finite_probabilities(model, layout):
    X = _extreme_rows()
    with np.errstate(over="ignore", invalid="ignore"):
        naive = X @ model.coef_.T + model.intercept_
    assert not np.all(np.isfinite(naive))  # the plain scores overflow: the case is real
    scores, proba = exact_predictions(X, model.coef_, model.intercept_)
    data = {"dense": X, "sparse": sp.csr_matrix(X), "float32": X}[layout]
    if layout == "float32":
        data = np.clip(X, -3e38, 3e38).astype(np.float32)
        scores, proba = exact_predictions(data, model.coef_, model.intercept_)
    predicted = model.predict_proba(data)
    assert np.all(np.isfinite(predicted))
    np.testing.assert_allclose(predicted, proba, atol=1e-12)
    np.testing.assert_array_equal(model.predict(data), np.argmax(proba, axis=1))
    log_proba = model.predict_log_proba(data)
    assert not np.any(np.isnan(log_proba))
    np.testing.assert_allclose(np.exp(log_proba), proba, atol=1e-12)
    decision = model.decision_function(data)
    assert not np.any(np.isnan(decision))
    finite = np.isfinite(scores)
    np.testing.assert_array_equal(np.sign(decision[~finite]), np.sign(scores[~finite]))
    np.testing.assert_allclose(decision[finite], scores[finite], rtol=1e-6)


def test_cv_model_with_an_absent_class_keeps_its_zero_probability():
    """The -inf intercept of a class missing from a fold is not an overflow to repair."""
    X, y = load_iris(return_X_y=True)
    cv = SoftmaxRegressionCV(Cs=2, cv=2).fit(X, y)
    model = cv._fitted_model(
        cv.classes_,
        np.hstack([cv.coef_, cv.intercept_[:, None]]),
        4,
        None,
        1.0,
        np.array([False, False, True]),
    )
    model.intercept_ = model.intercept_.copy()
    model.intercept_[2] = -np.inf
    rows = np.vstack([X[:3], [[1e308, 1e308, -1e308, 0.0]]])
    proba = model.predict_proba(rows)
    assert np.all(np.isfinite(proba)) and np.all(proba[:, 2] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
