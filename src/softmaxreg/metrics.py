"""Scoring and calibration of predicted class probabilities.

All functions take ``proba`` of shape (n_samples, K), one column per class in the order of
the model's ``classes_``, and the true labels ``y_true``. How ``y_true`` is matched to the
columns is decided by :func:`encode_labels` (``labels=`` names the columns explicitly).

- :func:`brier_score`: the multiclass Brier score, ``mean_i sum_k (p_ik - [y_i = k])^2``.
- :func:`reliability_curve`: observed frequency against mean predicted probability per bin,
  for the top label or for every class (one-vs-rest).
- :func:`expected_calibration_error`: the weighted mean gap of that curve (top-label ECE of
  Guo et al. 2017, or class-wise ECE of Kull et al. 2019).

Bins are right-closed, ``(edge[b], edge[b+1]]``, with a probability of exactly 0 in the first
bin: the convention of :func:`sklearn.calibration.calibration_curve`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

_KINDS = ("top-label", "class-wise")
_STRATEGIES = ("uniform", "quantile")
# Rows of ``proba`` must sum to 1 within this: loose enough for float32 softmax output.
_ROW_SUM_TOLERANCE = 1e-3


def check_proba(proba, name: str = "proba") -> np.ndarray:
    """Validate class probabilities: a finite 2-D array in [0, 1] whose rows sum to 1.

    Parameters
    ----------
    proba : array-like of shape (n_samples, K)

    Returns
    -------
    ndarray of shape (n_samples, K), float64

    Raises
    ------
    ValueError
        Not 2-D, empty, fewer than 2 columns, NaN/inf, entries outside [0, 1], or rows that do
        not sum to 1.
    """
    try:
        proba = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if proba.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D, shape (n_samples, n_classes); got shape {proba.shape}."
        )
    if proba.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples).")
    if proba.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 class columns; got {proba.shape[1]}.")
    if not np.all(np.isfinite(proba)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if proba.min() < 0 or proba.max() > 1 + _ROW_SUM_TOLERANCE:
        raise ValueError(
            f"{name} must lie in [0, 1]; got values in [{proba.min()}, {proba.max()}]."
        )
    row_sums = proba.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1)))
    if abs(row_sums[worst] - 1) > _ROW_SUM_TOLERANCE:
        raise ValueError(
            f"rows of {name} must sum to 1; row {worst} sums to {row_sums[worst]:.6g}."
        )
    return proba


def encode_labels(y_true, n_classes: int, labels=None) -> np.ndarray:
    """Column index in ``proba`` of every true label.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    n_classes : int
        Number of columns of ``proba``.
    labels : array-like of shape (n_classes,), optional
        The class label of each column (the model's ``classes_``). Without it: integer labels
        all in ``0..K-1`` are taken as column indices; otherwise the sorted distinct labels of
        ``y_true`` must number exactly ``K`` (scikit-learn's convention).

    Returns
    -------
    ndarray of shape (n_samples,), intp
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D; got shape {y_true.shape}.")
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty (0 samples).")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n_classes:
            raise ValueError(
                f"labels must name the {n_classes} probability columns; got shape {labels.shape}."
            )
        if len(np.unique(labels)) != n_classes:
            raise ValueError("labels contains duplicates.")
        order = np.argsort(labels, kind="stable")
        position = np.searchsorted(labels[order], y_true)
        position = np.clip(position, 0, n_classes - 1)
        found = labels[order][position] == y_true
        if not np.all(found):
            missing = np.unique(y_true[~found])[:5]
            raise ValueError(f"y_true has labels not in labels: {missing.tolist()}.")
        return order[position].astype(np.intp)
    if y_true.dtype.kind in "iub" or (
        y_true.dtype.kind == "f"
        and np.all(np.isfinite(y_true))
        and np.all(y_true == np.round(y_true))
    ):
        as_int = y_true.astype(np.int64)
        if as_int.min() >= 0 and as_int.max() < n_classes:
            return as_int.astype(np.intp)
    classes, encoded = np.unique(y_true, return_inverse=True)
    if classes.shape[0] != n_classes:
        raise ValueError(
            f"y_true has {classes.shape[0]} distinct labels but proba has {n_classes} columns; "
            "pass labels= (the model's classes_) to say which column is which."
        )
    return encoded.astype(np.intp)


def _check_weights(sample_weight, n_samples: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_samples)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be numeric: {exc}") from None
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) like y_true; got {weights.shape}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("sample_weight must be finite and >= 0.")
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to 0.")
    return weights


def _check_inputs(y_true, proba, labels, sample_weight):
    proba = check_proba(proba)
    index = encode_labels(y_true, proba.shape[1], labels)
    if index.shape[0] != proba.shape[0]:
        raise ValueError(
            f"y_true has {index.shape[0]} samples but proba has {proba.shape[0]} rows."
        )
    return proba, index, _check_weights(sample_weight, proba.shape[0])


def brier_score(y_true, proba, *, labels=None, sample_weight=None) -> float:
    """Multiclass Brier score: ``mean_i sum_k (p_ik - [y_i = k])^2``, in [0, 2], lower is better.

    This is Brier's original definition, summed over all classes. For two classes it is twice
    the binary score of :func:`sklearn.metrics.brier_score_loss` (which looks at the positive
    class only); it equals ``brier_score_loss(..., scale_by_half=False)`` of scikit-learn >= 1.7.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, K)
    labels : array-like of shape (K,), optional
        Class label of each column (see :func:`encode_labels`).
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float
    """
    proba, index, weights = _check_inputs(y_true, proba, labels, sample_weight)
    squared = np.sum(proba**2, axis=1)
    # sum_k (p_k - [y = k])^2 = sum_k p_k^2 - 2 p_y + 1, without building the one-hot matrix
    per_sample = squared - 2 * proba[np.arange(proba.shape[0]), index] + 1
    return float(np.average(per_sample, weights=weights))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Result of :func:`reliability_curve`.

    For ``kind="top-label"`` the arrays have shape (n_bins,); for ``kind="class-wise"`` they
    have shape (K, n_bins), one row per class. Empty bins hold ``count = 0`` and NaN in
    ``prob_true`` and ``prob_pred`` (there is nothing to average).

    Attributes
    ----------
    prob_true : ndarray
        Observed frequency in each bin (accuracy for top-label, ``[y = k]`` for class k).
    prob_pred : ndarray
        Mean predicted probability in each bin.
    counts : ndarray
        Total sample weight in each bin.
    bin_edges : ndarray of shape (n_bins + 1,) or (K, n_bins + 1)
    kind : str
    """

    prob_true: np.ndarray
    prob_pred: np.ndarray
    counts: np.ndarray
    bin_edges: np.ndarray
    kind: str

    def calibration_error(self) -> float:
        """Weighted mean absolute gap ``sum_b n_b / n * |prob_true_b - prob_pred_b|``
        (averaged over classes for the class-wise curve)."""
        gap = np.abs(np.nan_to_num(self.prob_true) - np.nan_to_num(self.prob_pred))
        share = self.counts / self.counts.sum(axis=-1, keepdims=True)
        return float(np.mean(np.sum(share * gap, axis=-1)))


def _bin_edges(scores: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1))
    # the outer edges cover [0, 1] so every score falls in a bin
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def _binned(scores, hits, weights, n_bins, strategy):
    """Per-bin weight, mean score and mean hit over right-closed bins."""
    edges = _bin_edges(scores, n_bins, strategy)
    # bin b holds edges[b] < s <= edges[b+1]; s = 0 joins bin 0
    which = np.clip(np.searchsorted(edges, scores, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, weights=weights, minlength=n_bins)
    score_sum = np.bincount(which, weights=weights * scores, minlength=n_bins)
    hit_sum = np.bincount(which, weights=weights * hits, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob_pred = np.where(counts > 0, score_sum / counts, np.nan)
        prob_true = np.where(counts > 0, hit_sum / counts, np.nan)
    return prob_true, prob_pred, counts, edges


def _check_binning(n_bins, kind, strategy):
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1; got n_bins={n_bins!r}.")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got kind={kind!r}.")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}; got strategy={strategy!r}.")


def reliability_curve(
    y_true,
    proba,
    *,
    n_bins: int = 10,
    kind: str = "top-label",
    strategy: str = "uniform",
    labels=None,
    sample_weight=None,
) -> ReliabilityCurve:
    """Observed frequency against mean predicted probability, per probability bin.

    ``kind="top-label"`` bins the confidence ``max_k p_ik`` and measures accuracy (is the
    most probable class the true one?). ``kind="class-wise"`` bins ``p_ik`` of every class
    ``k`` separately and measures ``[y_i = k]``: one-vs-rest, the binary
    :func:`sklearn.calibration.calibration_curve` applied to each column.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, K)
    n_bins : int, default=10
    kind : {"top-label", "class-wise"}, default="top-label"
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1], or bins holding equal numbers of samples.
    labels : array-like of shape (K,), optional
        Class label of each column (see :func:`encode_labels`).
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    ReliabilityCurve
        Arrays of shape (n_bins,) for top-label, (K, n_bins) for class-wise.
    """
    _check_binning(n_bins, kind, strategy)
    proba, index, weights = _check_inputs(y_true, proba, labels, sample_weight)
    if kind == "top-label":
        # ties between columns: argmax takes the first, like ``predict``
        predicted = np.argmax(proba, axis=1)
        confidence = proba[np.arange(proba.shape[0]), predicted]
        hits = (predicted == index).astype(np.float64)
        return ReliabilityCurve(*_binned(confidence, hits, weights, n_bins, strategy), kind=kind)
    rows = [
        _binned(proba[:, k], (index == k).astype(np.float64), weights, n_bins, strategy)
        for k in range(proba.shape[1])
    ]
    prob_true, prob_pred, counts, edges = (np.stack(part) for part in zip(*rows, strict=True))
    return ReliabilityCurve(prob_true, prob_pred, counts, edges, kind=kind)


def expected_calibration_error(
    y_true,
    proba,
    *,
    n_bins: int = 15,
    kind: str = "top-label",
    strategy: str = "uniform",
    labels=None,
    sample_weight=None,
) -> float:
    """Expected calibration error: ``sum_b n_b / n * |observed_b - predicted_b|``.

    ``kind="top-label"``: the ECE of Guo et al. (2017) on the confidence of the predicted
    class. ``kind="class-wise"``: the mean over classes of the one-vs-rest ECE of every
    column (Kull et al. 2019), which also sees miscalibration of the non-winning classes.
    Both are 0 for a perfectly calibrated model and at most 1; both depend on ``n_bins``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, K)
    n_bins : int, default=15
    kind : {"top-label", "class-wise"}, default="top-label"
    strategy : {"uniform", "quantile"}, default="uniform"
    labels : array-like of shape (K,), optional
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float
    """
    curve = reliability_curve(
        y_true,
        proba,
        n_bins=n_bins,
        kind=kind,
        strategy=strategy,
        labels=labels,
        sample_weight=sample_weight,
    )
    return curve.calibration_error()
