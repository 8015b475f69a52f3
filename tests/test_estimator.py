"""SoftmaxRegression against scikit-learn: the estimator API and the coefficients it finds."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning, SkipTestWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from softmaxreg import SoftmaxRegression


def design_objective(model, X, y, sample_weight=None):
    """DESIGN.md's f(W, b) = C * sum_i s_i * (-log P(y_i|x_i)) + 0.5 ||W||^2, computed here
    from the predicted probabilities (an outside formula, not the library's loss)."""
    proba = model.predict_proba(X)
    index = np.searchsorted(model.classes_, y)
    weights = np.ones(len(y)) if sample_weight is None else sample_weight
    data_fit = -np.sum(weights * np.log(proba[np.arange(len(y)), index]))
    return model.C * data_fit + 0.5 * np.sum(model.coef_.astype(np.float64) ** 2)


def test_check_estimator_passes():
    # every check runs, the array-API one included (tests/conftest.py sets SCIPY_ARRAY_API):
    # a check that skips itself warns, which fails here
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkipTestWarning)
        check_estimator(SoftmaxRegression())


def _dataset(name):
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name != "iris":
        X = StandardScaler().fit_transform(X)
    return X, y


@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_matches_scikit_learn(name, C):
    X, y = _dataset(name)
    ours = SoftmaxRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=20000).fit(X, y)
    assert np.max(np.abs(ours.predict_proba(X) - reference.predict_proba(X))) <= 1e-5
    ours_objective = design_objective(ours, X, y)
    reference_objective = design_objective(reference, X, y)
    assert ours_objective <= reference_objective * (1 + 1e-7)
    assert ours.converged_
    np.testing.assert_array_equal(ours.classes_, reference.classes_)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cholesky"])
def test_named_solvers_match_scikit_learn_with_weights(solver):
    X, y = _dataset("wine")
    rng = np.random.default_rng(0)
    sample_weight = rng.uniform(0.1, 2.0, size=len(y))
    class_weight = {0: 2.0, 2: 0.5}
    ours = SoftmaxRegression(solver=solver, tol=1e-10, class_weight=class_weight)
    ours.fit(X, y, sample_weight=sample_weight)
    reference = LogisticRegression(tol=1e-10, max_iter=20000, class_weight=class_weight)
    reference.fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-6)


def test_balanced_class_weight_matches_scikit_learn():
    X, y = make_classification(
        300, 5, n_informative=4, n_redundant=0, n_classes=3, weights=[0.7, 0.2, 0.1], random_state=0
    )
    ours = SoftmaxRegression(class_weight="balanced", tol=1e-10).fit(X, y)
    reference = LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=1e-5, atol=1e-6)


def test_no_intercept_and_no_penalty_match_scikit_learn():
    X, y = _dataset("wine")
    ours = SoftmaxRegression(fit_intercept=False, tol=1e-10).fit(X, y)
    reference = LogisticRegression(fit_intercept=False, tol=1e-10, max_iter=20000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-6)
    assert np.all(ours.intercept_ == 0)
    X, y = load_iris(return_X_y=True)
    X = X[:, :2]  # not separable with only the sepal measurements
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=20000).fit(X, y)
    ours = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_binary_problem_keeps_one_row_per_class():
    X, y = make_classification(200, 4, random_state=1)
    model = SoftmaxRegression().fit(X, y)
    assert model.coef_.shape == (2, 4)
    assert model.intercept_.shape == (2,)
    decision = model.decision_function(X)
    assert decision.shape == (200,)
    np.testing.assert_array_equal((decision > 0).astype(int), model.predict(X))
    # same probabilities as scikit-learn's binary model with half the C (symmetric form:
    # the difference of our two rows is scikit-learn's single row, and its squared norm is
    # twice that of each centred row)
    reference = LogisticRegression(C=2.0, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_sparse_and_dense_give_the_same_model():
    X, y = _dataset("digits")
    dense = SoftmaxRegression(tol=1e-9).fit(X, y)
    sparse = SoftmaxRegression(tol=1e-9).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(X), atol=1e-6)


def test_string_labels_and_sklearn_tools():
    X, y = _dataset("iris")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    pipeline = make_pipeline(StandardScaler(), SoftmaxRegression())
    assert cross_val_score(pipeline, X, labels, cv=3).mean() > 0.9
    search = GridSearchCV(SoftmaxRegression(), {"C": [0.1, 1.0]}, cv=3).fit(X, labels)
    assert search.best_estimator_.classes_.tolist() == labels[[0, 50, 100]].tolist()
    cloned = clone(SoftmaxRegression(C=3.0))
    assert cloned.C == 3.0 and not hasattr(cloned, "coef_")


def test_dataframe_input_sets_feature_names():
    pd = pytest.importorskip("pandas", reason="pandas is in the dev extra")
    X, y = _dataset("iris")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = SoftmaxRegression().fit(frame, y)
    assert model.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    # an ndarray after a DataFrame fit: scikit-learn's warning, and the same probabilities
    with pytest.warns(UserWarning, match="feature names"):
        from_array = model.predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(frame), from_array)


def test_polars_input():
    pl = pytest.importorskip("polars", reason="polars is in the dev extra")
    X, y = _dataset("iris")
    frame = pl.DataFrame({name: X[:, i] for i, name in enumerate("abcd")})
    model = SoftmaxRegression().fit(frame, y)
    reference = SoftmaxRegression().fit(X, y)
    assert model.feature_names_in_.tolist() == list("abcd")
    np.testing.assert_allclose(
        model.predict_proba(frame), reference.predict_proba(X), atol=1e-10
    )


def test_warm_start_reuses_coefficients():
    X, y = _dataset("digits")
    cold = SoftmaxRegression(solver="lbfgs", tol=1e-8).fit(X, y)
    warm = SoftmaxRegression(solver="lbfgs", tol=1e-8, warm_start=True).fit(X, y)
    warm.set_params(C=1.0001).fit(X, y)
    assert warm.n_iter_ < cold.n_iter_ / 3
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-4)


def test_max_iter_reached_warns_and_reports_not_converged():
    X, y = _dataset("digits")
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = SoftmaxRegression(solver="lbfgs", max_iter=3).fit(X, y)
    assert model.converged_ is False
    assert model.n_iter_ == 3


def test_float32_fits_end_at_float32s_reach_without_a_warning():
    """float32 features of size 1e4 leave the objective's rounding near 1e-7 of it: the
    stopping rule's threshold is capped there, so default fits converge (no warning) and end
    within float32's reach of the float64 optimum."""
    from sklearn.linear_model import LogisticRegression

    X, y = _dataset("iris")
    X = (X * 1e4).astype(np.float32)
    X64 = X.astype(np.float64)
    reference = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000)
    exact = reference.fit(X64, y).predict_proba(X64)
    for solver, reach in (("auto", 1e-4), ("newton-cholesky", 1e-4), ("newton-cg", 1e-3)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = SoftmaxRegression(solver=solver).fit(X, y)
        assert model.converged_
        assert np.max(np.abs(model.predict_proba(X64) - exact)) <= reach, solver


def test_verbose_prints_progress(capsys):
    X, y = _dataset("iris")
    SoftmaxRegression(verbose=1).fit(X, y)
    assert "iter" in capsys.readouterr().out


# ---------------------------------------------------------------- legal extremes


def test_separable_data_without_penalty_warns_and_stays_finite():
    X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1, 2, 2])
    with pytest.warns(ConvergenceWarning):
        model = SoftmaxRegression(penalty=None, max_iter=50).fit(X, y)
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    np.testing.assert_array_equal(model.predict(X), y)
    assert np.all(np.isfinite(model.predict_proba(X)))


def test_huge_feature_values_give_finite_probabilities():
    X, y = _dataset("iris")
    model = SoftmaxRegression().fit(X, y)
    proba = model.predict_proba(X * 1e4)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(np.isfinite(model.predict_log_proba(X * 1e4)))


def test_one_sample_per_class_and_constant_feature():
    X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    y = np.array([0, 1, 2])
    model = SoftmaxRegression().fit(X, y)
    np.testing.assert_array_equal(model.predict(X), y)
    reference = LogisticRegression(tol=1e-10).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-6)


def test_float32_input_is_fitted_in_float32():
    X, y = _dataset("wine")
    model32 = SoftmaxRegression(tol=1e-5).fit(X.astype(np.float32), y)
    model64 = SoftmaxRegression(tol=1e-8).fit(X, y)
    assert model32.coef_.dtype == np.float32
    assert model32.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(
        model32.predict_proba(X.astype(np.float32)), model64.predict_proba(X), atol=1e-4
    )


# ---------------------------------------------------------------- bad input

X_OK, Y_OK = load_iris(return_X_y=True)


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.where(np.arange(600).reshape(150, 4) == 5, np.nan, X_OK), Y_OK, "NaN"),
        (np.where(np.arange(600).reshape(150, 4) == 5, np.inf, X_OK), Y_OK, "infinity"),
        (X_OK, np.where(np.arange(150) == 3, np.nan, Y_OK), "NaN"),
        (X_OK, np.where(np.arange(150) == 3, np.inf, Y_OK), "infinity"),
        (X_OK, np.zeros(150), "one class"),
        (np.empty((0, 4)), np.empty(0), "0 sample"),
        (X_OK[:, 0], Y_OK, "2D array"),
        (X_OK.reshape(150, 2, 2), Y_OK, "dim 3"),
        (X_OK, Y_OK[:-1], "inconsistent numbers of samples"),
        (X_OK.astype(str).astype(object) + "x", Y_OK, "could not convert string"),
        (X_OK + 1j, Y_OK, "Complex data not supported"),
        (X_OK, np.column_stack([Y_OK, Y_OK]), "1d array"),
        (X_OK, Y_OK + 0.5, "Unknown label type"),
    ],
)
def test_bad_data_raises_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(X, y)


@pytest.mark.parametrize(
    ("sample_weight", "match"),
    [
        (-np.ones(150), "negative"),
        (np.ones(149), "149 entries"),
        (np.zeros(150), "zero for every sample"),
        (np.full(150, np.nan), "NaN"),
        (np.ones((150, 2)), "1-D"),
    ],
)
def test_bad_sample_weight_raises(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(X_OK, Y_OK, sample_weight=sample_weight)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"C": 0.0}, "C must be a positive"),
        ({"C": -1.0}, "C must be a positive"),
        ({"C": np.nan}, "C must be a positive"),
        ({"penalty": "l3"}, "penalty must be one of"),
        ({"solver": "magic"}, "solver must be 'auto' or one of"),
        ({"penalty": "elasticnet", "l1_ratio": 1.5}, "l1_ratio must lie in"),
        ({"penalty": "elasticnet", "l1_ratio": -0.1}, "l1_ratio must lie in"),
        ({"penalty": "elasticnet"}, "needs l1_ratio"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"max_iter": 2.5}, "max_iter must be an integer >= 1"),
        ({"tol": -1e-3}, "tol must be None or a number >= 0"),
        ({"class_weight": {5: 2.0}}, r"class_weight names classes \[5\]"),
        ({"class_weight": "unbalanced"}, "class_weight must be"),
        ({"class_weight": {0: -1.0}}, "must be a finite number >= 0"),
    ],
)
def test_bad_parameters_raise_value_error(params, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(**params).fit(X_OK, Y_OK)


def test_prediction_errors():
    with pytest.raises(ValueError, match="not fitted"):
        SoftmaxRegression().predict(X_OK)
    model = SoftmaxRegression().fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="features"):
        model.predict(X_OK[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(np.full((2, 4), np.nan))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 1, 2, 3, 1]),
        np.array([3, 1, 2, 3, 1], dtype=np.uint8),
        np.array([True, False, True, True]),
        np.array(["b", "a", "c", "a"]),
        np.array([2.0, 0.0, 1.0, 2.0]),  # integral floats: scikit-learn's check passes them
        np.array(["b", "a", "c", "a"], dtype=object),
    ],
)
def test_labels_are_encoded_as_scikit_learn_encodes_them(labels):
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.multiclass import check_classification_targets

    from softmaxreg._validation import encode_labels

    check_classification_targets(labels)  # all of them are classification targets
    classes, codes = encode_labels(labels, "test")
    encoder = LabelEncoder().fit(labels)
    np.testing.assert_array_equal(classes, encoder.classes_)
    np.testing.assert_array_equal(codes, encoder.transform(labels))
    assert codes.dtype == np.intp
