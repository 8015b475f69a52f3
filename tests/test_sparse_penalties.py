"""L1, elastic-net and grouped penalties: optimality certificates, scikit-learn's SAGA, the path.

Optimality is certified from the outside: the KKT conditions of

    f(W, b) = C * sum_i s_i * (-log P(y_i | x_i)) + R(W)

are evaluated here from the data-fit gradient of ``_loss.loss_gradient`` and written out in
this file (not with the solver's own ``min_norm_subgradient``):

- L1 / elastic-net (``a = l1_ratio``): ``C g_kj + (1 - a) W_kj + a sign(W_kj) = 0`` where
  ``W_kj != 0`` and ``|C g_kj| <= a`` where ``W_kj = 0``;
- grouped: ``C g_j + (1 - a) W_j + a W_j / ||W_j|| = 0`` for a nonzero column ``j`` and
  ``||C g_j|| <= a`` for a zero one;
- intercepts: ``C g_b = 0``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression, _loss, regularization_path


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0  # keeps it quick; TF-IDF-like sparsity (about half zeros)
    return X, y[:600]


def _ratio(penalty, l1_ratio):
    return 1.0 if penalty == "l1" else l1_ratio


def _data_gradient(X, y, coef, intercept, sample_weight=None):
    """Gradient of the (weighted) summed cross-entropy [K, d] and [K] at (coef, intercept)."""
    classes, codes = np.unique(y, return_inverse=True)
    params = np.hstack([coef, intercept[:, None]])
    _, grad = _loss.loss_gradient(X, codes, params, sample_weight, True)
    return grad[:, :-1], grad[:, -1]


def kkt_violation(X, y, coef, intercept, C, penalty, l1_ratio, sample_weight=None):
    """Largest KKT residual of the unscaled objective, relative to the penalty weight ``a``
    and the size of ``C * gradient`` (whichever is larger)."""
    a = _ratio(penalty, l1_ratio)
    g, g_b = _data_gradient(X, y, coef, intercept, sample_weight)
    g, g_b = C * g, C * g_b
    smooth = g + (1 - a) * coef
    residual = [np.abs(g_b).max()]
    if penalty == "grouped":
        norms = np.linalg.norm(coef, axis=0)
        active = norms > 0
        residual.append(
            np.abs(smooth[:, active] + a * coef[:, active] / norms[active]).max(initial=0.0)
        )
        residual.append(np.maximum(np.linalg.norm(g[:, ~active], axis=0) - a, 0).max(initial=0))
    else:
        nonzero = coef != 0
        residual.append(np.abs(smooth[nonzero] + a * np.sign(coef[nonzero])).max(initial=0.0))
        residual.append(np.maximum(np.abs(g[~nonzero]) - a, 0).max(initial=0.0))
    scale = max(a, np.abs(g).max())
    return max(residual) / scale


def objective(X, y, coef, intercept, C, penalty, l1_ratio, sample_weight=None):
    """DESIGN.md's f, written out here."""
    classes, codes = np.unique(y, return_inverse=True)
    params = np.hstack([coef, intercept[:, None]])
    data = _loss.loss(X, codes, params, sample_weight, True)
    a = _ratio(penalty, l1_ratio)
    if penalty == "grouped":
        nonsmooth = np.linalg.norm(coef, axis=0).sum()
    else:
        nonsmooth = np.abs(coef).sum()
    return C * data + a * nonsmooth + (1 - a) / 2 * (coef**2).sum()


CASES = [("l1", None, 0.05), ("elasticnet", 0.5, 0.2), ("grouped", 0.7, 0.1)]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize(("penalty", "l1_ratio", "C"), CASES)
def test_kkt_certificate(digits, penalty, l1_ratio, C, sparse):
    X, y = digits
    Xf = sp.csr_matrix(X) if sparse else X
    model = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, tol=1e-10).fit(Xf, y)
    assert model.solver_ == "prox-newton"
    assert model.converged_
    violation = kkt_violation(X, y, model.coef_, model.intercept_, C, penalty, l1_ratio)
    assert violation <= 1e-6
    # Sparse solutions with exact zeros (entries, or whole columns for "grouped").
    zeros = model.coef_ == 0
    assert 0 < zeros.sum() < zeros.size
    if penalty == "grouped":
        assert np.array_equal(zeros.any(axis=0), zeros.all(axis=0))
        assert zeros.all(axis=0).sum() > 0


def _variant(X, y, kind):
    """(X to fit, its float64 values, sample weights) for one kind of input."""
    if kind == "csr":
        return sp.csr_matrix(X), X, None
    if kind == "float32":
        X32 = X.astype(np.float32)
        return X32, X32.astype(np.float64), None
    if kind == "weighted":
        return X, X, np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    return X, X, None


# Weak penalties (lam = 1 / (C n) about 1e-3 to 1e-4) are where an absolute tolerance on
# the scaled objective alone leaves the KKT conditions violated by percents.
DEFAULT_CASES = [("l1", None, 2.0), ("elasticnet", 0.5, 5.0), ("grouped", 0.7, 1.0)]


@pytest.mark.parametrize("kind", ["dense", "csr", "float32", "weighted"])
@pytest.mark.parametrize(("penalty", "l1_ratio", "C"), DEFAULT_CASES)
def test_kkt_certificate_at_default_settings(digits, penalty, l1_ratio, C, kind):
    """Default settings: the KKT conditions hold to 1e-6 relative (float32 data: to its
    reach) and the objective is within 1e-9 of a reference certified here to 1e-10."""
    X, y = digits
    X_fit, X64, weights = _variant(X, y, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio).fit(
            X_fit, y, sample_weight=weights
        )
    assert model.solver_ == "prox-newton" and model.converged_
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    violation = kkt_violation(X64, y, coef, intercept, C, penalty, l1_ratio, weights)
    assert violation <= (1e-4 if kind == "float32" else 1e-6)
    reference = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, tol=1e-9).fit(
        X64, y, sample_weight=weights
    )
    args = (C, penalty, l1_ratio, weights)
    assert kkt_violation(X64, y, reference.coef_, reference.intercept_, *args) <= 1e-10
    f_reference = objective(X64, y, reference.coef_, reference.intercept_, *args)
    f_model = objective(X64, y, coef, intercept, *args)
    assert f_model - f_reference <= (1e-6 if kind == "float32" else 1e-9) * f_reference


@pytest.mark.parametrize(
    ("penalty", "l1_ratio"), [("l1", None), ("elasticnet", 0.5), ("grouped", 0.5)]
)
def test_badly_scaled_features_finish(wine, penalty, l1_ratio):
    """Columns scaled by 1e8: the fit ends (converged, with the certificate, or with a
    ConvergenceWarning that names the precision problem), never runs on for minutes."""
    X, y = wine
    X = X.copy()
    X[:, ::2] *= 1e8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = SoftmaxRegression(C=1.0, penalty=penalty, l1_ratio=l1_ratio).fit(X, y)
    if model.converged_:
        assert not caught
        assert kkt_violation(X, y, model.coef_, model.intercept_, 1.0, penalty, l1_ratio) <= 1e-4
    else:
        assert any("standardise" in str(w.message) for w in caught)


@pytest.mark.parametrize(("penalty", "l1_ratio", "C"), CASES)
def test_dense_and_sparse_agree(digits, penalty, l1_ratio, C):
    X, y = digits
    dense = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, tol=1e-9).fit(X, y)
    csr = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, tol=1e-9).fit(
        sp.csr_matrix(X), y
    )
    f_dense = objective(X, y, dense.coef_, dense.intercept_, C, penalty, l1_ratio)
    f_csr = objective(X, y, csr.coef_, csr.intercept_, C, penalty, l1_ratio)
    assert f_csr == pytest.approx(f_dense, rel=1e-9)
    np.testing.assert_array_equal(dense.coef_ == 0, csr.coef_ == 0)


@pytest.mark.parametrize(
    ("penalty", "l1_ratio", "C"), [("l1", None, 0.1), ("elasticnet", 0.5, 0.3)]
)
def test_objective_equals_saga(wine, penalty, l1_ratio, C):
    """scikit-learn's SAGA run to a tight tolerance reaches the same objective and zeros."""
    X, y = wine
    saga = LogisticRegression(
        C=C,
        l1_ratio=_ratio(penalty, l1_ratio),
        solver="saga",
        tol=1e-12,
        max_iter=100_000,
        random_state=0,
    ).fit(X, y)
    ours = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio, tol=1e-10).fit(X, y)
    f_saga = objective(X, y, saga.coef_, saga.intercept_, C, penalty, l1_ratio)
    f_ours = objective(X, y, ours.coef_, ours.intercept_, C, penalty, l1_ratio)
    assert f_ours == pytest.approx(f_saga, rel=1e-6)
    assert f_ours <= f_saga * (1 + 1e-12)
    np.testing.assert_allclose(ours.coef_, saga.coef_, atol=1e-6)
    np.testing.assert_array_equal(ours.coef_ == 0, saga.coef_ == 0)


def test_float32_input(digits):
    """float32 data: the certificate holds to float32 precision (tol=1e-6 on the scaled
    objective is C * n * 1e-6 = 3e-5 on the unscaled one here)."""
    X, y = digits
    model = SoftmaxRegression(C=0.05, penalty="l1", tol=1e-6).fit(X.astype(np.float32), y)
    assert model.converged_
    violation = kkt_violation(
        X,
        y,
        model.coef_.astype(np.float64),
        model.intercept_.astype(np.float64),
        0.05,
        "l1",
        None,
    )
    assert violation <= 1e-4


# ---------------------------------------------------------------------------- the path
def _c_max(X, y, penalty, l1_ratio):
    """Smallest C at which W = 0 stops being optimal, from the gradient at the
    intercept-only model (whose probabilities are the class frequencies)."""
    classes, codes = np.unique(y, return_inverse=True)
    freq = np.bincount(codes) / len(codes)
    residual = np.tile(freq, (len(codes), 1))
    residual[np.arange(len(codes)), codes] -= 1
    g = residual.T @ X  # [K, d]
    a = _ratio(penalty, l1_ratio)
    if penalty == "grouped":
        return a / np.linalg.norm(g, axis=0).max()
    return a / np.abs(g).max()


@pytest.mark.parametrize(
    ("penalty", "l1_ratio"), [("l1", None), ("elasticnet", 0.5), ("grouped", 0.8)]
)
def test_path_is_zero_below_c_max_and_not_above(wine, penalty, l1_ratio):
    X, y = wine
    c_max = _c_max(X, y, penalty, l1_ratio)
    Cs = c_max * np.array([0.1, 0.5, 0.98, 1.02, 2.0, 10.0])
    path = regularization_path(X, y, Cs=Cs, penalty=penalty, l1_ratio=l1_ratio, tol=1e-9)
    assert path.converged.all()
    np.testing.assert_array_equal(path.n_nonzero[:3], 0)
    assert np.all(path.n_nonzero[3:] > 0)
    # The intercept-only rows are the log class frequencies (up to the common shift).
    freq = np.bincount(np.unique(y, return_inverse=True)[1]) / len(y)
    np.testing.assert_allclose(path.intercepts[0], np.log(freq) - np.log(freq).mean(), atol=1e-9)


@pytest.mark.parametrize(
    ("penalty", "l1_ratio"), [("l1", None), ("grouped", 1.0), ("elasticnet", 0.5)]
)
def test_path_monotone_where_theory_says(wine, penalty, l1_ratio):
    """Along the path of f = C L + R, the fit L is non-increasing and the penalty R
    non-decreasing in C (compare the optimality of each solution at the other's C). The
    number of nonzeros is *not* monotone in general for the lasso, so it is not tested."""
    X, y = wine
    path = regularization_path(
        X, y, Cs=np.logspace(-2, 1, 8), penalty=penalty, l1_ratio=l1_ratio, tol=1e-10
    )
    codes = np.unique(y, return_inverse=True)[1]
    fits, penalties = [], []
    for coef, intercept, C in zip(path.coefs, path.intercepts, path.Cs, strict=True):
        params = np.hstack([coef, intercept[:, None]])
        fits.append(_loss.loss(X, codes, params, None, True))
        penalties.append(objective(X, y, coef, intercept, C, penalty, l1_ratio) - C * fits[-1])
        assert kkt_violation(X, y, coef, intercept, C, penalty, l1_ratio) <= 1e-6
    assert np.all(np.diff(fits) <= 1e-8 * np.abs(fits[:-1]))
    assert np.all(np.diff(penalties) >= -1e-8 * np.abs(penalties[1:]))


def test_grouped_path_drops_features_for_all_classes(digits):
    X, y = digits
    path = regularization_path(X, y, Cs=[0.01, 0.03, 0.1], penalty="grouped", l1_ratio=1.0)
    for coef in path.coefs:
        zeros = coef == 0
        np.testing.assert_array_equal(zeros.any(axis=0), zeros.all(axis=0))
    assert path.n_active_features[0] < path.n_active_features[-1] < X.shape[1]


def test_path_record_shapes_and_grid(wine):
    X, y = wine
    path = regularization_path(X, y, Cs=3, penalty="l1")
    np.testing.assert_allclose(path.Cs, [1e-4, 1.0, 1e4])
    assert path.coefs.shape == (3, 3, X.shape[1])
    assert path.intercepts.shape == (3, 3)
    assert path.n_iter.shape == path.converged.shape == (3,)
    assert path.solver == "prox-newton"
    unsorted = regularization_path(X, y, Cs=[1.0, 0.01], penalty="l1")
    np.testing.assert_allclose(unsorted.Cs, [0.01, 1.0])


def test_path_without_intercept_and_with_weights(wine):
    X, y = wine
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    path = regularization_path(
        X, y, Cs=[0.1, 1.0], penalty="l1", fit_intercept=False, sample_weight=weights, tol=1e-9
    )
    np.testing.assert_array_equal(path.intercepts, 0.0)
    # Outside check of the weighted fit: the KKT conditions with s_i in the loss.
    codes = np.unique(y, return_inverse=True)[1]
    for coef, C in zip(path.coefs, path.Cs, strict=True):
        _, grad = _loss.loss_gradient(X, codes, coef, weights, False)
        g = C * grad
        nonzero = coef != 0
        assert np.abs(g[nonzero] + np.sign(coef[nonzero])).max(initial=0) <= 1e-6 * np.abs(g).max()
        assert np.abs(g[~nonzero]).max() <= 1 + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"Cs": 0}, "Cs must be"),
        ({"Cs": [1.0, -1.0]}, "positive finite"),
        ({"Cs": [[1.0]]}, "1-D"),
        ({"Cs": "many"}, "Cs must be"),
        ({"penalty": "l3"}, "penalty must be"),
        ({"penalty": "elasticnet"}, "l1_ratio"),
        ({"solver": "lbfgs"}, "does not support"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_path_bad_input(wine, kwargs, message):
    X, y = wine
    with pytest.raises(ValueError, match=message):
        regularization_path(X, y, **kwargs)


def test_path_bad_data(wine):
    X, y = wine
    with pytest.raises(ValueError, match="one class"):
        regularization_path(X, np.zeros(len(y)))
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regularization_path(X_nan, y)


def test_not_converged_warns(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = SoftmaxRegression(C=10.0, penalty="l1", max_iter=1).fit(X, y)
    assert not model.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SoftmaxRegression(C=0.05, penalty="l1").fit(X, y)


@pytest.mark.parametrize(
    ("penalty", "l1_ratio"), [("l1", None), ("elasticnet", 0.5), ("grouped", 1.0)]
)
def test_columns_far_from_zero_give_the_shifted_solution(penalty, l1_ratio):
    """Columns shifted by 1e3 make the intercept and the coefficients nearly collinear. The
    optimum is the unshifted problem's with the intercepts moved by ``-W 1e3`` (a shift
    changes neither W nor the penalty): the fit reaches it at default settings, certified
    on the shifted data, in about as many Newton iterations as the unshifted fit."""
    rng = np.random.default_rng(3)
    n, d, K = 1000, 5, 10
    X = rng.normal(size=(n, d))
    scores = X @ rng.normal(size=(d, K)) + rng.gumbel(size=(n, K))
    y = scores.argmax(axis=1)
    C = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plain = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio).fit(X, y)
        shifted = SoftmaxRegression(C=C, penalty=penalty, l1_ratio=l1_ratio).fit(X + 1e3, y)
    assert shifted.converged_
    violation = kkt_violation(X + 1e3, y, shifted.coef_, shifted.intercept_, C, penalty, l1_ratio)
    assert violation <= 1e-6
    # Compared by what is unique: with an even number of classes an L1 optimum is not
    # (a column of W moves freely within the median interval of its entries).
    np.testing.assert_allclose(
        shifted.predict_proba(X + 1e3), plain.predict_proba(X), rtol=0, atol=1e-6
    )
    args = (C, penalty, l1_ratio)
    f_plain = objective(X, y, plain.coef_, plain.intercept_, *args)
    f_shifted = objective(X + 1e3, y, shifted.coef_, shifted.intercept_, *args)
    assert abs(f_shifted - f_plain) <= 1e-9 * f_plain
    assert shifted.n_iter_ <= 2 * plain.n_iter_ + 5
