"""Checks of estimator parameters, targets and weights: clear errors, no arithmetic."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from ._penalties import PENALTIES


def check_params(estimator, supported_solvers) -> None:
    """Validate the constructor parameters of a ``SoftmaxRegression``; raise on the first
    bad one."""
    C = estimator.C
    if isinstance(C, bool) or not isinstance(C, numbers.Real) or not np.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a positive finite number; got C={C!r}.")
    if estimator.penalty not in PENALTIES:
        raise ValueError(
            f"penalty must be one of 'l2', 'l1', 'elasticnet', 'grouped' or None; "
            f"got penalty={estimator.penalty!r}."
        )
    l1_ratio = estimator.l1_ratio
    if estimator.penalty in ("elasticnet", "grouped"):
        if l1_ratio is None:
            raise ValueError(
                f"penalty={estimator.penalty!r} needs l1_ratio in [0, 1]; got l1_ratio=None."
            )
    if l1_ratio is not None and (
        isinstance(l1_ratio, bool)
        or not isinstance(l1_ratio, numbers.Real)
        or not 0 <= l1_ratio <= 1
    ):
        raise ValueError(f"l1_ratio must lie in [0, 1]; got l1_ratio={l1_ratio!r}.")
    if estimator.solver != "auto" and estimator.solver not in supported_solvers:
        raise ValueError(
            f"solver must be 'auto' or one of {sorted(supported_solvers)}; "
            f"got solver={estimator.solver!r}."
        )
    max_iter = estimator.max_iter
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1; got max_iter={max_iter!r}.")
    tol = estimator.tol
    if tol is not None and (
        isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0
    ):
        raise ValueError(f"tol must be None or a number >= 0; got tol={tol!r}.")
    if not isinstance(estimator.fit_intercept, bool | np.bool_):
        raise TypeError(
            f"fit_intercept must be a bool; got {type(estimator.fit_intercept).__name__}."
        )
    class_weight = estimator.class_weight
    if (
        class_weight is not None
        and class_weight != "balanced"
        and not isinstance(class_weight, dict)
    ):
        raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {class_weight!r}.")


def check_weight_values(all_finite: bool, smallest: float, total: float, dtype) -> None:
    """The checks of the values of ``sample_weight``, from what every backend can compute
    cheaply: whether all are finite, the smallest, and the sum in ``dtype`` (the in-memory,
    Dask and array API fits share these messages).

    A positive sum below ``tiny / eps`` of ``dtype`` (1e-292 in float64) is refused too: the
    weighted losses would underflow to 0 or to subnormal numbers, and the gradient would come
    out 0/0. Scaling every weight by ``a`` and ``C`` by ``1 / a`` gives the same fit.
    """
    if not all_finite:
        raise ValueError("sample_weight contains NaN or infinity.")
    if smallest < 0:
        raise ValueError("sample_weight contains negative values; weights must be >= 0.")
    if not total > 0:
        raise ValueError("sample_weight is zero for every sample; at least one must be > 0.")
    info = np.finfo(dtype)
    if total < info.tiny / info.eps:
        raise ValueError(
            f"sample_weight sums to {total:.3g}, too little to compute with in {info.dtype} "
            f"(below {info.tiny / info.eps:.1e}: the weighted losses underflow); multiply the "
            "weights by a constant and divide C by it, which gives the same fit."
        )


def check_sample_weight(sample_weight, n_samples: int, dtype) -> np.ndarray | None:
    """Return ``sample_weight`` as a 1-D array of ``dtype``, or None for unit weights.

    Raises ``ValueError`` for a wrong shape or length, NaN/inf, negative entries, an
    all-zero vector or one too small to compute with (see :func:`check_weight_values`).
    """
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        sample_weight = np.full(n_samples, sample_weight)
    try:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be numeric: {exc}") from None
    if sample_weight.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D; got an array of shape {sample_weight.shape}.")
    if sample_weight.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has {sample_weight.shape[0]} entries but X has {n_samples} samples."
        )
    all_finite = bool(np.all(np.isfinite(sample_weight)))
    converted = sample_weight.astype(dtype, copy=False)
    check_weight_values(
        all_finite,
        float(sample_weight.min()) if all_finite else np.nan,
        float(converted.sum(dtype=np.float64)) if all_finite else np.nan,
        dtype,
    )
    return converted


def class_weight_vector(class_weight, classes: np.ndarray, y, sample_weight) -> np.ndarray:
    """Per-class weights [K] for ``class_weight`` in {None, "balanced", dict}.

    A dict may name a subset of the classes (the rest weigh 1); a key that is not a class of
    ``y`` is an error, since it usually means a typo.
    """
    if isinstance(class_weight, dict):
        known = set(classes.tolist())
        unknown = [key for key in class_weight if key not in known]
        if unknown:
            raise ValueError(
                f"class_weight names classes {unknown} that do not occur in y "
                f"(classes are {classes.tolist()})."
            )
        for key, weight in class_weight.items():
            if not isinstance(weight, numbers.Real) or not np.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"class_weight[{key!r}] must be a finite number >= 0; got {weight!r}."
                )
    return compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sample_weight)


def require_two_classes(classes: np.ndarray, who: str) -> None:
    """Raise ``ValueError`` unless ``classes`` (the distinct labels) holds at least two."""
    if classes.shape[0] < 2:
        found = f"only one class: {classes[0]!r}" if classes.shape[0] else "no class"
        raise ValueError(
            f"{who} needs samples of at least 2 classes in the data, but the data contains {found}."
        )


def check_label_values(labels: np.ndarray) -> None:
    """Raise ``ValueError`` for labels that are not classes: missing ones (None, NaN),
    continuous floats, several columns (scikit-learn's ``check_classification_targets``).

    Checking the distinct labels gives the same answer as checking all of them, so the Dask
    and array API fits call this on their classes and raise the in-memory fit's messages.
    """
    # one-dimensional integer, boolean or string labels are always classification targets;
    # scikit-learn's check (its type_of_target, 0.3 ms on 1,797 labels, 2% of a digits fit)
    # is asked only about the others: floats (continuous?), objects, several columns
    if labels.ndim == 1 and labels.dtype.kind in "biuU":
        return
    if labels.dtype.kind == "O":
        if any(_is_missing(label) for label in labels.ravel()):
            raise ValueError(
                "y contains missing labels (None or NaN); drop those samples or give them a "
                "class."
            )
    try:
        check_classification_targets(labels)
    except TypeError:  # its np.unique cannot order str beside int
        raise _mixed_types_error(labels) from None


def _mixed_types_error(labels) -> ValueError:
    kinds = sorted({type(label).__name__ for label in np.ravel(labels)})
    return ValueError(
        f"y mixes labels of types {kinds}, which cannot be ordered; give every class label "
        "the same type (all str, or all numbers)."
    )


def _is_missing(label) -> bool:
    return (
        label is None
        or (isinstance(label, float | np.floating) and label != label)
        or type(label).__name__ in ("NAType", "NaTType")
    )


def unique_labels(labels: np.ndarray, return_inverse: bool = False):
    """``np.unique`` of labels, with labels of types that cannot be ordered (strings mixed
    with numbers) a ``ValueError`` rather than NumPy's bare ``TypeError``."""
    try:
        return np.unique(labels, return_inverse=return_inverse)
    except TypeError:
        raise _mixed_types_error(labels) from None


def encode_labels(y, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Classification labels [n] -> (sorted distinct classes [K], codes ``0..K-1`` [n] intp).

    Raises ``ValueError`` for missing or continuous labels, labels of mixed types or fewer
    than two classes, naming ``who``.
    """
    y = np.asarray(y)
    check_label_values(y)
    classes, codes = unique_labels(y, return_inverse=True)
    require_two_classes(classes, who)
    return classes, codes.astype(np.intp)
