"""The formula interface against statsmodels' MNLogit.from_formula on statsmodels' fair data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxRegression, formula
from softmaxreg.cli import main
from softmaxreg.inference import SeparationWarning

pytest.importorskip("formulaic")

FORMULA = "rate_marriage ~ age + yrs_married + C(religious) + np.log1p(affairs)"


@pytest.fixture(autouse=True, scope="module")
def _single_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fair():
    return sm.datasets.fair.load_pandas().data


@pytest.fixture(scope="module")
def fitted(fair):
    return SoftmaxRegression.from_formula(FORMULA, fair)


@pytest.fixture(scope="module")
def reference(fair):
    return smf.mnlogit(FORMULA, fair).fit(method="newton", tol=1e-12, disp=0)


def by_name(reference_frame: pd.DataFrame, ours: pd.DataFrame) -> np.ndarray:
    """statsmodels' rows in our order ("Intercept" is our "intercept")."""
    renamed = reference_frame.rename(index={"Intercept": "intercept"})
    return renamed.loc[list(ours.index)].to_numpy()


def test_from_formula_matches_statsmodels_and_keeps_factor_labels(fitted, reference):
    result = fitted.inference()
    assert result.dependent == "rate_marriage"
    assert "C(religious)[T.2.0]" in result.params.index
    np.testing.assert_allclose(result.params.to_numpy(), by_name(reference.params, result.params),
                               rtol=1e-6)
    np.testing.assert_allclose(result.bse.to_numpy(), by_name(reference.bse, result.params),
                               rtol=1e-6)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=1e-10)
    text = str(result.summary())
    assert "Dep. Variable:" in text and "rate_marriage" in text
    assert "rate_marriage=2\n" in text and "C(religious)[T.4.0]" in text
    assert fitted.estimator_.penalty is None and fitted.estimator_.fit_intercept


def test_wald_test_terms_tests_a_factor_jointly(fitted, reference):
    result = fitted.inference()
    table = result.wald_test_terms()
    assert list(table.index) == ["intercept", "age", "yrs_married", "C(religious)",
                                 "np.log1p(affairs)"]
    assert table.loc["C(religious)", "df"] == 3 * 4
    names = list(reference.params.index)  # statsmodels' rows, stacked class by class
    R = np.zeros((12, len(names) * 4))
    row = 0
    for block in range(4):
        for level in ("2.0", "3.0", "4.0"):
            R[row, block * len(names) + names.index(f"C(religious)[T.{level}]")] = 1.0
            row += 1
    expected = reference.wald_test(R, scalar=True)
    np.testing.assert_allclose(table.loc["C(religious)", "chi2"], expected.statistic, rtol=1e-6)
    np.testing.assert_allclose(table.loc["C(religious)", "P>chi2"], expected.pvalue, rtol=1e-5)


def test_new_data_go_through_the_same_formula(fair, fitted, reference):
    rows = fair.iloc[[3, 10, 200]]
    np.testing.assert_allclose(fitted.predict_proba(rows), reference.predict(rows), rtol=1e-4)
    assert fitted.design(rows).shape == (3, len(fitted.estimator_.feature_names_in_))
    np.testing.assert_array_equal(fitted.predict(rows),
                                  fitted.classes_[np.argmax(reference.predict(rows), axis=1)])


def test_no_intercept_and_cluster_groups_by_column(fair):
    text = "rate_marriage ~ C(religious) + age - 1"
    ours = formula.fit(text, fair)
    assert not ours.estimator_.fit_intercept
    result = ours.inference(cov_type="cluster", groups="occupation")
    expected = smf.mnlogit(text, fair).fit(method="newton", tol=1e-12, disp=0,
                                           cov_type="cluster",
                                           cov_kwds={"groups": fair["occupation"].to_numpy()})
    np.testing.assert_allclose(result.params.to_numpy(), by_name(expected.params, result.params),
                               rtol=1e-6)
    np.testing.assert_allclose(result.bse.to_numpy(), by_name(expected.bse, result.params),
                               rtol=1e-6)
    assert result.n_groups == 6


def test_rows_with_missing_values_are_dropped_with_their_weights(fair):
    data = fair.copy()
    data.loc[data.index[:40], "age"] = np.nan
    weights = np.random.default_rng(0).integers(1, 3, size=len(data))
    ours = formula.fit("rate_marriage ~ age + yrs_married", data, sample_weight=weights)
    complete = formula.fit("rate_marriage ~ age + yrs_married", data.iloc[40:],
                           sample_weight=weights[40:])
    np.testing.assert_allclose(ours.inference().bse.to_numpy(),
                               complete.inference().bse.to_numpy(), rtol=1e-8)
    assert ours.inference().nobs == weights[40:].sum()


def test_empty_cell_of_a_factor_is_reported_with_its_column(fair):
    # No wife with occupation 1 rates her marriage 1: that dummy's class-1 coefficient diverges.
    text = "rate_marriage ~ C(occupation, Treatment(reference=3)) + age"
    ours = formula.fit(text, fair)
    with pytest.warns(SeparationWarning, match=r"Treatment\(reference=3\)\)\[T.1.0\]' \(class 1\)"):
        result = ours.inference()
    assert not result.converged
    summary = str(result.summary())
    assert "Quasi-separation:" in summary and "merge these rare levels" in summary
    assert summary.count("Fix:") == 1


def test_bad_formulas(fair):
    with pytest.raises(ValueError, match=r"names \['agee'\], which the data lack"):
        formula.fit("rate_marriage ~ agee + yrs_married", fair)
    with pytest.raises(ValueError, match=r"names \['rating'\]"):
        formula.fit("rating ~ age", fair)
    with pytest.raises(ValueError, match="one '~'"):
        formula.fit("age + yrs_married", fair)
    with pytest.raises(ValueError, match="fit_intercept is set by the formula"):
        formula.fit("rate_marriage ~ age", fair, fit_intercept=False)
    with pytest.raises(TypeError, match="DataFrame"):
        formula.fit("rate_marriage ~ age", fair.to_numpy())
    model = formula.fit("rate_marriage ~ age", fair)
    with pytest.raises(ValueError, match="not a column"):
        model.inference(cov_type="cluster", groups="town")
    with pytest.raises(ValueError, match="one entry per row of the data"):
        model.inference(fair, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"names \['age'\]"):
        model.predict(fair.drop(columns=["age"]))


def test_cli_summary_with_formula(tmp_path, fair, capsys):
    path = tmp_path / "fair.csv"
    fair.to_csv(path, index=False)
    status = main(["summary", str(path), "--formula", FORMULA])
    out = capsys.readouterr().out
    assert status == 0
    assert "rate_marriage=5" in out and "C(religious)[T.3.0]" in out and "Df Residuals" in out
    status = main(["summary", str(path), "--formula", "rate_marriage ~ agee"])
    assert status == 2
    err = capsys.readouterr().err
    assert "agee" in err and len(err.strip().splitlines()) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["summary", str(path), str(path), "--formula", FORMULA]) == 2
