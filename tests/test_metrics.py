"""Calibration metrics against outside references: scikit-learn and plain loops over bins."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from softmaxreg.metrics import (
    brier_score,
    encode_labels,
    expected_calibration_error,
    reliability_curve,
)


def random_proba(rng, n_samples, n_classes, sharpness=3.0):
    logits = sharpness * rng.normal(size=(n_samples, n_classes))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    proba = random_proba(rng, 400, 4)
    # labels drawn from the probabilities, then some flipped: a miscalibrated model
    y = np.array([rng.choice(4, p=row) for row in proba])
    flip = rng.random(400) < 0.2
    y[flip] = rng.integers(0, 4, flip.sum())
    return proba, y


def brute_force_brier(proba, y):
    total = 0.0
    for i in range(proba.shape[0]):
        for k in range(proba.shape[1]):
            total += (proba[i, k] - (1.0 if y[i] == k else 0.0)) ** 2
    return total / proba.shape[0]


def brute_force_ece(scores, hits, n_bins):
    """ECE with equal-width right-closed bins (lo, hi]; a score of 0 goes to the first bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    n = len(scores)
    ece = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        members = [i for i in range(n) if (lo < scores[i] <= hi) or (b == 0 and scores[i] == 0.0)]
        if not members:
            continue
        confidence = sum(scores[i] for i in members) / len(members)
        frequency = sum(hits[i] for i in members) / len(members)
        ece += len(members) / n * abs(frequency - confidence)
    return ece


def test_brier_matches_direct_formula_and_sklearn(sample):
    proba, y = sample
    assert brier_score(y, proba) == pytest.approx(brute_force_brier(proba, y), rel=1e-12)
    try:
        reference = brier_score_loss(y, proba, labels=np.arange(4), scale_by_half=False)
    except TypeError:  # scikit-learn < 1.7 has no multiclass Brier score
        pytest.skip("scikit-learn < 1.7: multiclass brier_score_loss unavailable")
    assert brier_score(y, proba) == pytest.approx(reference, rel=1e-12)


def test_brier_binary_is_twice_sklearn_binary():
    rng = np.random.default_rng(1)
    proba = random_proba(rng, 200, 2)
    y = rng.integers(0, 2, 200)
    assert brier_score(y, proba) == pytest.approx(2 * brier_score_loss(y, proba[:, 1]))


def test_brier_with_string_labels_and_weights(sample):
    proba, y = sample
    names = np.array(["ant", "bee", "cat", "dog"])
    weights = np.random.default_rng(2).random(len(y))
    per_sample = [brute_force_brier(proba[i : i + 1], y[i : i + 1]) for i in range(len(y))]
    expected = np.sum(weights * np.array(per_sample)) / weights.sum()
    result = brier_score(names[y], proba, labels=names, sample_weight=weights)
    assert result == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_top_label_ece_matches_loop(sample, n_bins):
    proba, y = sample
    predicted = proba.argmax(axis=1)
    scores = proba.max(axis=1)
    hits = (predicted == y).astype(float)
    expected = brute_force_ece(scores, hits, n_bins)
    assert expected > 0.01  # the flipped labels make the model overconfident
    assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(expected, abs=1e-12)


def test_class_wise_ece_matches_loop(sample):
    proba, y = sample
    expected = np.mean([brute_force_ece(proba[:, k], (y == k).astype(float), 10) for k in range(4)])
    result = expected_calibration_error(y, proba, n_bins=10, kind="class-wise")
    assert result == pytest.approx(expected, abs=1e-12)


def test_ece_bin_edges_are_right_closed():
    # scores exactly on bin edges: 0.5 belongs to (0.25, 0.5], 0 to the first bin
    proba = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])
    y = np.array([0, 1, 0, 1])
    scores = proba.max(axis=1)
    hits = (proba.argmax(axis=1) == y).astype(float)
    assert expected_calibration_error(y, proba, n_bins=4) == pytest.approx(
        brute_force_ece(scores, hits, 4)
    )
    scores_class1 = proba[:, 1]
    assert expected_calibration_error(y, proba, n_bins=4, kind="class-wise") == pytest.approx(
        np.mean(
            [
                brute_force_ece(proba[:, 0], (y == 0).astype(float), 4),
                brute_force_ece(scores_class1, (y == 1).astype(float), 4),
            ]
        )
    )


def test_perfectly_calibrated_limit_has_small_ece():
    rng = np.random.default_rng(3)
    proba = random_proba(rng, 20000, 3, sharpness=1.5)
    y = (rng.random(20000)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    assert expected_calibration_error(y, proba) < 0.02
    assert expected_calibration_error(y, proba, kind="class-wise") < 0.02


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_per_class_matches_sklearn(sample, strategy):
    proba, y = sample
    curve = reliability_curve(y, proba, n_bins=8, kind="class-wise", strategy=strategy)
    assert curve.prob_true.shape == (4, 8)
    for k in range(4):
        prob_true, prob_pred = calibration_curve(
            (y == k).astype(int), proba[:, k], n_bins=8, strategy=strategy
        )
        filled = curve.counts[k] > 0
        np.testing.assert_allclose(curve.prob_true[k][filled], prob_true, atol=1e-12)
        np.testing.assert_allclose(curve.prob_pred[k][filled], prob_pred, atol=1e-12)
        assert curve.counts[k].sum() == len(y)


def test_reliability_curve_top_label_matches_sklearn(sample):
    proba, y = sample
    curve = reliability_curve(y, proba, n_bins=10)
    correct = (proba.argmax(axis=1) == y).astype(int)
    prob_true, prob_pred = calibration_curve(correct, proba.max(axis=1), n_bins=10)
    filled = curve.counts > 0
    np.testing.assert_allclose(curve.prob_true[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(curve.prob_pred[filled], prob_pred, atol=1e-12)
    # top-label confidence is at least 1/K: the low bins are empty and hold NaN
    assert curve.counts[0] == 0 and np.isnan(curve.prob_true[0])


def test_encode_labels_conventions():
    assert encode_labels([2, 0, 1], 3).tolist() == [2, 0, 1]
    assert encode_labels([0, 0, 2], 3).tolist() == [0, 0, 2]  # indices, class 1 absent
    assert encode_labels(["b", "a", "c"], 3).tolist() == [1, 0, 2]
    assert encode_labels(["x", "y"], 2, labels=["y", "x"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="distinct labels"):
        encode_labels(["a", "b"], 3)
    with pytest.raises(ValueError, match="not in labels"):
        encode_labels(["a", "z"], 2, labels=["a", "b"])


@pytest.mark.parametrize(
    ("proba", "message"),
    [
        (np.array([0.2, 0.8]), "2-D"),
        (np.array([[0.2, np.nan]]), "NaN"),
        (np.array([[0.2, 0.2]]), "sum to 1"),
        (np.array([[-0.2, 1.2]]), r"\[0, 1\]"),
        (np.array([[1.0]]), "at least 2"),
        (np.empty((0, 3)), "empty"),
    ],
)
def test_bad_proba_raises(proba, message):
    with pytest.raises(ValueError, match=message):
        brier_score(np.zeros(max(len(proba), 1), dtype=int), proba)


def test_bad_arguments_raise(sample):
    proba, y = sample
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(y, proba, n_bins=0)
    with pytest.raises(ValueError, match="kind"):
        expected_calibration_error(y, proba, kind="classwise")
    with pytest.raises(ValueError, match="strategy"):
        reliability_curve(y, proba, strategy="kmeans")
    with pytest.raises(ValueError, match="samples"):
        brier_score(y[:-1], proba)
    with pytest.raises(ValueError, match="sample_weight"):
        brier_score(y, proba, sample_weight=-np.ones(len(y)))
