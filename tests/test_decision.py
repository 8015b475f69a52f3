"""Cost-sensitive decisions against brute force, and the meta-estimators on real data."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from softmaxreg import SoftmaxRegression
from softmaxreg.decision import (
    CostSensitiveClassifier,
    TunedClassWeightClassifier,
    average_cost,
    bayes_decision,
    risk_coverage_curve,
)


def random_proba(rng, n_samples, n_classes):
    raw = rng.exponential(size=(n_samples, n_classes)) ** 2
    return raw / raw.sum(axis=1, keepdims=True)


def brute_force_decision(proba, cost, reject_cost=None):
    """Loop over samples and candidate classes; first minimum wins; class wins a tie with
    rejection."""
    out = []
    for q in proba:
        expected = [sum(q[t] * cost[t][p] for t in range(len(q))) for p in range(len(q))]
        best = min(range(len(q)), key=lambda p: (expected[p], p))
        if reject_cost is not None and expected[best] > reject_cost:
            best = -1
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("seed", range(8))
def test_bayes_decision_is_brute_force_argmin(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 7))
    proba = random_proba(rng, 300, n_classes)
    cost = rng.uniform(0, 10, size=(n_classes, n_classes))
    if seed % 2:
        np.fill_diagonal(cost, 0)
    if seed == 3:
        cost -= 4  # negative entries (rewards) are allowed
    expected = brute_force_decision(proba, cost)
    assert np.array_equal(bayes_decision(proba, cost), expected)
    assert set(np.unique(expected)) != {expected[0]}  # the costs do change decisions


@pytest.mark.parametrize("seed", range(8))
def test_bayes_decision_with_rejection_is_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n_classes = int(rng.integers(2, 6))
    proba = random_proba(rng, 300, n_classes)
    cost = rng.uniform(0, 5, size=(n_classes, n_classes))
    np.fill_diagonal(cost, 0)
    expected_cost = proba @ cost
    # a reject cost between the quartiles of the best expected costs: some of each
    reject_cost = float(np.median(expected_cost.min(axis=1)))
    expected = brute_force_decision(proba, cost, reject_cost)
    result = bayes_decision(proba, cost, reject_cost=reject_cost)
    assert np.array_equal(result, expected)
    assert 0 < np.mean(result == -1) < 1


def test_zero_one_cost_gives_argmax_and_chow_rule():
    rng = np.random.default_rng(7)
    proba = random_proba(rng, 500, 4)
    zero_one = 1 - np.eye(4)
    assert np.array_equal(bayes_decision(proba, zero_one), proba.argmax(axis=1))
    # Chow: reject when max p < 1 - reject_cost
    result = bayes_decision(proba, zero_one, reject_cost=0.4)
    assert np.array_equal(result == -1, proba.max(axis=1) < 0.6)


def test_documented_ties():
    proba = np.array([[0.5, 0.5], [0.5, 0.5]])
    cost = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert bayes_decision(proba, cost).tolist() == [0, 0]  # lowest index wins
    # expected cost exactly equal to the reject cost: predict, don't abstain
    assert bayes_decision(proba, cost, reject_cost=0.5).tolist() == [0, 0]
    assert bayes_decision(proba, cost, reject_cost=0.49).tolist() == [-1, -1]


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (np.ones((3, 2)), "square"),
        (np.ones(3), "square"),
        (np.ones((4, 4)), "3 classes"),
        (np.array([[0, 1, np.nan], [1, 0, 1], [1, 1, 0]]), "NaN or infinite"),
        (np.array([[0, 1, np.inf], [1, 0, 1], [1, 1, 0]]), "NaN or infinite"),
        (np.array([["a", "b", "c"]] * 3), "real numbers"),
        (np.ones((3, 3)) * 1j, "real numbers"),
        (None, "required"),
    ],
)
def test_invalid_cost_matrix_raises(cost, message):
    proba = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=message):
        bayes_decision(proba, cost)


def test_invalid_cost_matrix_raises_in_fit():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="3 classes"):
        CostSensitiveClassifier(SoftmaxRegression(), np.ones((2, 2))).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        TunedClassWeightClassifier(SoftmaxRegression(), np.full((3, 3), np.nan), cv=2).fit(X, y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reject_cost": float("nan")}, "reject_cost"),
        ({"reject_cost": "high"}, "reject_cost"),
    ],
)
def test_invalid_reject_cost_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bayes_decision(np.full((2, 2), 0.5), 1 - np.eye(2), **kwargs)


def test_bad_proba_raises():
    with pytest.raises(ValueError, match="sum to 1"):
        bayes_decision(np.array([[0.9, 0.9]]), 1 - np.eye(2))


def test_estimator_without_predict_proba_raises():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="predict_proba"):
        CostSensitiveClassifier(LinearSVC(), 1 - np.eye(3)).fit(X, y)
    with pytest.raises(ValueError, match="predict_proba"):
        TunedClassWeightClassifier(LinearSVC(), 1 - np.eye(3)).fit(X, y)


# ---------------------------------------------------------------------- meta-estimators
def digits_problem():
    """Real data with real overlap (digits on 4 principal components) and a cost matrix where
    missing a 3 costs 25 and missing an 8 costs 10, everything else 1."""
    X, y = load_digits(return_X_y=True)
    cost = np.ones((10, 10))
    cost[3, :] = 25
    cost[8, :] = 10
    np.fill_diagonal(cost, 0)
    return X, y, cost


def base_model():
    return make_pipeline(StandardScaler(), PCA(n_components=4, random_state=0), SoftmaxRegression())


def test_meta_estimators_lower_held_out_cost_on_digits():
    X, y, cost = digits_problem()
    totals = {"argmax": 0.0, "cost-sensitive": 0.0, "tuned": 0.0}
    for train, test in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        plain = base_model().fit(X[train], y[train])
        sensitive = CostSensitiveClassifier(base_model(), cost).fit(X[train], y[train])
        tuned = TunedClassWeightClassifier(base_model(), cost, cv=3).fit(X[train], y[train])
        # realised mean cost on held-out data, computed here from the cost matrix directly
        for name, predicted in [
            ("argmax", plain.predict(X[test])),
            ("cost-sensitive", sensitive.predict(X[test])),
            ("tuned", tuned.predict(X[test])),
        ]:
            fold_cost = np.mean([cost[t, p] for t, p in zip(y[test], predicted, strict=True)])
            totals[name] += fold_cost / 3
        assert tuned.best_score_ <= tuned.baseline_score_
    assert totals["cost-sensitive"] < 0.8 * totals["argmax"], totals
    assert totals["tuned"] < 0.8 * totals["argmax"], totals


def test_meta_estimators_in_pipeline_and_clone():
    X, y = load_iris(return_X_y=True)
    cost = np.array([[0, 1, 1], [1, 0, 1], [10, 10, 0]])
    for meta in (
        CostSensitiveClassifier(SoftmaxRegression(C=0.5), cost, reject_cost=0.3),
        TunedClassWeightClassifier(SoftmaxRegression(C=0.5), cost, cv=3, n_refinements=1),
    ):
        pipe = Pipeline([("scale", StandardScaler()), ("decide", meta)])
        copy = clone(pipe)
        assert np.array_equal(copy.get_params()["decide__cost_matrix"], cost)
        assert "estimator_" not in vars(copy.named_steps["decide"])
        predicted = copy.fit(X, y).predict(X)
        assert predicted.shape == (150,)
        assert set(np.unique(predicted)) <= {-1, 0, 1, 2}
        proba = copy.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1)
        # predict is the documented rule applied to predict_proba
        if isinstance(meta, CostSensitiveClassifier):
            assert np.array_equal(predicted, brute_force_decision(proba, cost, 0.3))


def test_grid_search_over_inner_parameters_uses_cost_score():
    X, y = load_iris(return_X_y=True)
    cost = np.array([[0, 1, 1], [1, 0, 1], [10, 10, 0]])
    search = GridSearchCV(
        CostSensitiveClassifier(SoftmaxRegression(), cost),
        {"estimator__C": [0.01, 1.0]},
        cv=3,
    ).fit(X, y)
    model = search.best_estimator_
    predicted = model.predict(X)
    realised = np.mean([cost[t, p] for t, p in zip(y, predicted, strict=True)])
    assert model.score(X, y) == pytest.approx(-realised)


def test_string_classes_reject_label_and_labelled_cost_frame():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    order = ["virginica", "setosa", "versicolor"]  # not the sorted order of classes_
    cost = pd.DataFrame(
        [[0, 10, 10], [1, 0, 1], [1, 1, 0]], index=order, columns=order, dtype=float
    )
    model = CostSensitiveClassifier(
        SoftmaxRegression(C=0.1), cost, reject_cost=0.2, reject_label="unsure"
    ).fit(X, names)
    predicted = model.predict(X)
    assert set(predicted) <= {"setosa", "versicolor", "virginica", "unsure"}
    assert "unsure" in set(predicted)
    aligned = cost.loc[list(model.classes_), list(model.classes_)].to_numpy()
    expected = brute_force_decision(model.predict_proba(X), aligned, 0.2)
    labels = np.array([*model.classes_, "unsure"], dtype=object)
    assert np.array_equal(predicted, labels[expected])
    with pytest.raises(ValueError, match="reject_label"):
        CostSensitiveClassifier(
            SoftmaxRegression(), np.ones((3, 3)), reject_cost=1, reject_label="setosa"
        ).fit(X, names)


def test_tuner_maximises_a_metric_without_cost_matrix():
    X, y = load_digits(return_X_y=True)
    keep = (y != 1) | (np.arange(len(y)) % 6 == 0)  # make class 1 rare
    X, y = X[keep], y[keep]
    tuned = TunedClassWeightClassifier(base_model(), scoring="balanced_accuracy", cv=3).fit(X, y)
    assert tuned.best_score_ >= tuned.baseline_score_
    assert tuned.class_weights_.shape == (10,)
    assert np.prod(tuned.class_weights_) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="scoring"):
        TunedClassWeightClassifier(SoftmaxRegression(), scoring="auc").fit(X, y)


def test_works_with_any_probabilistic_classifier():
    X, y = load_iris(return_X_y=True)
    cost = np.array([[0, 1, 1], [1, 0, 1], [10, 10, 0]])
    model = CostSensitiveClassifier(LogisticRegression(max_iter=500), cost).fit(X, y)
    proba = model.estimator_.predict_proba(X)
    assert np.array_equal(model.predict(X), brute_force_decision(proba, cost))


# ---------------------------------------------------------------------- risk-coverage
@pytest.mark.parametrize("use_cost", [False, True])
def test_risk_coverage_matches_rejection_rule(use_cost):
    rng = np.random.default_rng(11)
    # repeated rows: exact ties in the scores, which must share one point of the curve
    proba = random_proba(rng, 80, 3)[rng.integers(0, 80, 200)]
    y = np.array([rng.choice(3, p=row) for row in proba])
    cost = rng.uniform(0, 4, (3, 3)) if use_cost else 1 - np.eye(3)
    np.fill_diagonal(cost, 0)
    coverage, risk, thresholds = risk_coverage_curve(
        proba, y, cost_matrix=cost if use_cost else None
    )
    assert np.all(np.diff(thresholds) > 0) and coverage[-1] == 1.0
    assert len(thresholds) <= 80  # one point per distinct row at most
    for c, r, t in zip(coverage, risk, thresholds, strict=True):
        # the loop sums in another order than a matrix product: allow rounding in the scores
        decision = brute_force_decision(proba, cost, t + 1e-12)
        accepted = decision != -1
        assert np.mean(accepted) == pytest.approx(c)
        realised = [cost[y[i], decision[i]] for i in np.flatnonzero(accepted)]
        assert r == pytest.approx(np.mean(realised))


def test_average_cost_matches_direct_sum():
    y = np.array([0, 1, 2, 1])
    decision = np.array([0, 2, -1, 1])
    cost = np.array([[0, 1, 2], [3, 0, 4], [5, 6, 0]])
    assert average_cost(y, decision, cost, reject_cost=0.5) == pytest.approx((0 + 4 + 0.5 + 0) / 4)
    with pytest.raises(ValueError, match="reject_cost"):
        average_cost(y, decision, cost)


def test_tuner_with_reject_option_scores_the_realised_cost():
    X, y = load_iris(return_X_y=True)
    X = X[:, :2]  # sepal measurements only: classes 1 and 2 overlap
    cost = np.array([[0, 1, 1], [1, 0, 1], [10, 10, 0]])
    tuned = TunedClassWeightClassifier(
        SoftmaxRegression(), cost, reject_cost=0.5, cv=3, n_refinements=1
    ).fit(X, y)
    predicted = tuned.predict(X)
    assert -1 in predicted
    realised = np.mean([0.5 if p == -1 else cost[t, p] for t, p in zip(y, predicted, strict=True)])
    assert tuned.score(X, y) == pytest.approx(-realised)
    # the decision is the Bayes rule on the reweighted, renormalised probabilities
    weighted = tuned.predict_proba(X) * tuned.class_weights_
    weighted /= weighted.sum(axis=1, keepdims=True)
    assert np.array_equal(predicted, brute_force_decision(weighted, cost, 0.5))
