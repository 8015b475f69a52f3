"""Agreement with R's glmnet on a small multinomial problem (reference committed as a fixture).

``fixtures/glmnet_reference.json`` was written once by ``fixtures/glmnet_reference.R`` (glmnet
4.1, ``family="multinomial"``, ``standardize=FALSE``, ``thresh=1e-14``); R is not needed here.

The mapping: glmnet minimises ``sum_i w_i l_i / sum_i w_i + lambda * P_alpha(B)`` (it rescales
the weights to sum one), which is ``f / (C * S)`` of DESIGN.md at ``C = 1 / (lambda * S)``,
``S = sum_i w_i`` (``n`` unweighted), and ``l1_ratio = alpha``. glmnet reports the coefficients
of every feature shifted over classes to the representative with the smallest penalty (the
median over classes for the lasso, the mean for the grouped lasso); that is the minimiser of
the penalised objective, so ours must equal them as they are. Intercepts are defined up to a
common shift (no penalty pins them): both sides are compared with mean zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from softmaxreg import SoftmaxRegression, _loss, regularization_path

FIXTURE = Path(__file__).parent / "fixtures" / "glmnet_reference.json"


@pytest.fixture(scope="module")
def reference():
    data = json.loads(FIXTURE.read_text())
    data["X"] = np.array(data["X"])
    data["y"] = np.array(data["y"]).astype(int)
    data["weights"] = np.array(data["weights"])
    return data


def _case(reference, name):
    return next(case for case in reference["cases"] if case["name"] == name)


def _setting(reference, case):
    """(penalty, l1_ratio, sample_weight, Cs) of a glmnet case."""
    weights = reference["weights"] if case["weighted"] else None
    total = reference["weights"].sum() if case["weighted"] else len(reference["y"])
    Cs = 1.0 / (np.array(reference["lambdas"]) * total)
    if case["grouped"]:
        return "grouped", case["alpha"], weights, Cs
    if case["alpha"] == 1:
        return "l1", None, weights, Cs
    return "elasticnet", case["alpha"], weights, Cs


def _glmnet_params(case):
    """glmnet's coef [n_lambdas, K, d] and mean-zero intercepts [n_lambdas, K]."""
    params = np.array(case["params"])
    intercepts = params[:, :, 0]
    return params[:, :, 1:], intercepts - intercepts.mean(axis=1, keepdims=True)


def _scaled_objective(X, y, coef, intercept, C, penalty, l1_ratio, weights):
    """glmnet's objective, written out: weighted mean log-loss plus lambda * P_alpha."""
    params = np.hstack([coef, intercept[:, None]])
    data = _loss.loss(X, y, params, weights, True)
    total = len(y) if weights is None else weights.sum()
    lam = 1.0 / (C * total)
    alpha = 1.0 if penalty == "l1" else l1_ratio
    if penalty == "grouped":
        nonsmooth = np.linalg.norm(coef, axis=0).sum()
    else:
        nonsmooth = np.abs(coef).sum()
    return data / total + lam * (alpha * nonsmooth + (1 - alpha) / 2 * (coef**2).sum())


NAMES = [
    "lasso",
    "elasticnet",
    "grouped",
    "grouped_elasticnet",
    "lasso_weighted",
    "elasticnet_weighted",
]


@pytest.mark.parametrize("name", NAMES)
def test_path_equals_glmnet(reference, name):
    """Our path at glmnet's lambdas: the same coefficients, zeros and objective."""
    case = _case(reference, name)
    X, y = reference["X"], reference["y"]
    penalty, l1_ratio, weights, Cs = _setting(reference, case)
    path = regularization_path(
        X, y, Cs=Cs, penalty=penalty, l1_ratio=l1_ratio, sample_weight=weights
    )
    assert path.converged.all()
    coefs, intercepts = _glmnet_params(case)
    order = np.argsort(Cs)  # the path is ascending in C, glmnet's lambdas descending
    coefs, intercepts = coefs[order], intercepts[order]
    # glmnet's own accuracy at thresh=1e-14: its KKT residuals are 1e-7 (lasso) to 3e-5
    # (grouped) relative; ours are below 1e-6.
    atol = 1e-5 if case["grouped"] else 1e-6
    np.testing.assert_allclose(path.coefs, coefs, rtol=0, atol=atol)
    np.testing.assert_allclose(path.intercepts, intercepts, rtol=0, atol=atol)
    np.testing.assert_array_equal(path.coefs == 0, coefs == 0)
    for c, C in enumerate(path.Cs):
        ours = _scaled_objective(
            X, y, path.coefs[c], path.intercepts[c], C, penalty, l1_ratio, weights
        )
        glmnet = _scaled_objective(X, y, coefs[c], intercepts[c], C, penalty, l1_ratio, weights)
        assert ours <= glmnet * (1 + 1e-12)
        assert ours == pytest.approx(glmnet, rel=1e-9)


@pytest.mark.parametrize("name", ["lasso", "grouped_elasticnet", "elasticnet_weighted"])
def test_single_fit_equals_glmnet(reference, name):
    """A single default fit at the smallest lambda (the weakest penalty, the hardest fit)."""
    case = _case(reference, name)
    X, y = reference["X"], reference["y"]
    penalty, l1_ratio, weights, Cs = _setting(reference, case)
    model = SoftmaxRegression(C=Cs[-1], penalty=penalty, l1_ratio=l1_ratio).fit(
        X, y, sample_weight=weights
    )
    coefs, intercepts = _glmnet_params(case)
    atol = 1e-5 if case["grouped"] else 1e-6
    np.testing.assert_allclose(model.coef_, coefs[-1], rtol=0, atol=atol)
    np.testing.assert_allclose(model.intercept_, intercepts[-1], rtol=0, atol=atol)
