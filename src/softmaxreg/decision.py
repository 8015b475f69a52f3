"""Decisions from class probabilities: cost matrices, rejection, tuned class weights.

A probability is only useful through the decision it drives. With ``cost_matrix[t, p]`` the
cost of predicting class ``p`` when the truth is ``t``, the expected cost of predicting ``p``
for a sample with probabilities ``q`` is ``sum_t q_t * cost_matrix[t, p]``, i.e. the matrix
product ``proba @ cost_matrix``; the Bayes decision takes its minimum. With a reject option
costing ``reject_cost``, the rule abstains where every class costs more than that.

- :func:`bayes_decision`: the rule on an array of probabilities (class indices, -1 = abstain).
- :class:`CostSensitiveClassifier`: a scikit-learn meta-estimator applying it to any
  probabilistic classifier.
- :class:`TunedClassWeightClassifier`: reweights the probabilities per class, with weights
  tuned on cross-validated probabilities to minimise cost or maximise a metric; this also
  repairs miscalibrated or prior-shifted probabilities, which the plain rule takes at face
  value.
- :func:`risk_coverage_curve`: the cost of the accepted samples against the share accepted,
  for every reject threshold.
- :func:`average_cost`: the realised mean cost of decisions against true labels.

Class ``k`` of a cost matrix is column ``k`` of ``proba``: the model's ``classes_`` order.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import check_cv, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from .metrics import check_proba, encode_labels

REJECT = -1
"""Class index that :func:`bayes_decision` returns for an abstention."""


# ---------------------------------------------------------------------- validation
def check_cost_matrix(cost_matrix, n_classes: int | None = None, classes=None) -> np.ndarray:
    """Validate a cost matrix and return it as a float64 array of shape (K, K).

    Parameters
    ----------
    cost_matrix : array-like of shape (K, K) or pandas DataFrame
        ``cost_matrix[t, p]``: cost of predicting class ``p`` when the truth is ``t``. Any
        finite real numbers (negative entries are rewards). A DataFrame whose index and
        columns are class labels is reordered to ``classes`` when those are given.
    n_classes : int, optional
        The number of classes it must cover.
    classes : array-like of shape (K,), optional
        Class labels, used to align a labelled DataFrame.

    Returns
    -------
    ndarray of shape (K, K)

    Raises
    ------
    ValueError
        Not numeric, not 2-D, not square, fewer than 2 classes, NaN/inf, a size that differs
        from ``n_classes``, or DataFrame labels that do not match ``classes``.
    """
    if cost_matrix is None:
        raise ValueError("cost_matrix is required; got None.")
    if classes is not None and hasattr(cost_matrix, "loc") and hasattr(cost_matrix, "columns"):
        classes_list = list(classes)
        index_labels, column_labels = list(cost_matrix.index), list(cost_matrix.columns)
        if set(index_labels) == set(classes_list) and set(column_labels) == set(classes_list):
            cost_matrix = cost_matrix.loc[classes_list, classes_list]
        elif not (
            index_labels == list(range(len(index_labels)))
            and column_labels == list(range(len(column_labels)))
        ):
            raise ValueError(
                "cost_matrix DataFrame must have the classes as index and columns; "
                f"classes are {classes_list}, index is {index_labels}, columns {column_labels}."
            )
    matrix = np.asarray(cost_matrix)
    if matrix.dtype.kind not in "iuf":
        raise ValueError(
            f"cost_matrix must hold real numbers; got an array of dtype {matrix.dtype}."
        )
    matrix = matrix.astype(np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"cost_matrix must be a square (K, K) matrix; got shape {matrix.shape}.")
    if matrix.shape[0] < 2:
        raise ValueError(f"cost_matrix must cover at least 2 classes; got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("cost_matrix contains NaN or infinite entries.")
    if n_classes is not None and matrix.shape[0] != n_classes:
        raise ValueError(
            f"cost_matrix is {matrix.shape[0]}x{matrix.shape[1]} but there are {n_classes} "
            "classes; it must be KxK with rows = true class, columns = predicted class."
        )
    return matrix


def _check_reject_cost(reject_cost) -> float | None:
    if reject_cost is None:
        return None
    if (
        isinstance(reject_cost, bool)
        or not isinstance(reject_cost, numbers.Real)
        or not np.isfinite(reject_cost)
    ):
        raise ValueError(f"reject_cost must be None or a finite number; got {reject_cost!r}.")
    return float(reject_cost)


def zero_one_cost(n_classes: int) -> np.ndarray:
    """The 0-1 cost matrix ``1 - I`` of shape (K, K): its Bayes decision is the argmax."""
    return 1.0 - np.eye(n_classes)


# ---------------------------------------------------------------------- the rule
def expected_costs(proba, cost_matrix) -> np.ndarray:
    """Expected cost of predicting each class: ``proba @ cost_matrix``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, K)
    cost_matrix : array-like of shape (K, K)

    Returns
    -------
    ndarray of shape (n_samples, K)
    """
    proba = check_proba(proba)
    matrix = check_cost_matrix(cost_matrix, proba.shape[1])
    return proba @ matrix


def bayes_decision(proba, cost_matrix, reject_cost=None) -> np.ndarray:
    """The class index that minimises expected cost; -1 (abstain) where rejecting is cheaper.

    Predicting class ``p`` costs ``sum_t proba[i, t] * cost_matrix[t, p]`` in expectation.
    With ``reject_cost`` the rule abstains where every class costs strictly more than
    ``reject_cost`` (Chow's rule generalised to costs).

    Ties: between classes, the lowest class index wins (``np.argmin``); between the best
    class and rejection (expected cost exactly ``reject_cost``), the class wins.

    Parameters
    ----------
    proba : array-like of shape (n_samples, K)
        Class probabilities, rows summing to 1.
    cost_matrix : array-like of shape (K, K)
        ``cost_matrix[true, predicted]``.
    reject_cost : float, optional
        Cost of abstaining, the same for every sample.

    Returns
    -------
    ndarray of shape (n_samples,), intp
        Indices in ``0..K-1``, or -1 for an abstention.

    Examples
    --------
    >>> import numpy as np
    >>> cost = np.array([[0, 1], [10, 0]])   # missing class 1 is ten times worse
    >>> bayes_decision(np.array([[0.8, 0.2], [0.95, 0.05]]), cost).tolist()
    [1, 0]
    >>> bayes_decision(np.array([[0.8, 0.2], [0.95, 0.05]]), cost, reject_cost=0.3).tolist()
    [-1, 0]
    """
    costs = expected_costs(proba, cost_matrix)
    reject_cost = _check_reject_cost(reject_cost)
    decision = np.argmin(costs, axis=1).astype(np.intp)
    if reject_cost is not None:
        best = costs[np.arange(costs.shape[0]), decision]
        decision[best > reject_cost] = REJECT
    return decision


def average_cost(
    y_true, decision, cost_matrix, reject_cost=None, *, labels=None, sample_weight=None
) -> float:
    """Realised mean cost ``mean_i cost_matrix[y_i, decision_i]`` (``reject_cost`` for -1).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (see :func:`softmaxreg.metrics.encode_labels` and ``labels``).
    decision : array-like of shape (n_samples,)
        Class *indices* as returned by :func:`bayes_decision`, -1 for an abstention.
    cost_matrix : array-like of shape (K, K)
    reject_cost : float, optional
        Required when ``decision`` holds -1.
    labels : array-like of shape (K,), optional
        Class label of each cost-matrix row/column.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float
    """
    matrix = check_cost_matrix(cost_matrix)
    n_classes = matrix.shape[0]
    truth = encode_labels(y_true, n_classes, labels)
    decision = np.asarray(decision)
    if decision.shape != truth.shape:
        raise ValueError(f"decision has shape {decision.shape} but y_true has shape {truth.shape}.")
    if decision.dtype.kind not in "iu" or decision.min() < REJECT or decision.max() >= n_classes:
        raise ValueError(f"decision must hold class indices in -1..{n_classes - 1}.")
    reject_cost = _check_reject_cost(reject_cost)
    rejected = decision == REJECT
    if np.any(rejected) and reject_cost is None:
        raise ValueError("decision contains abstentions (-1) but reject_cost is None.")
    costs = np.where(rejected, reject_cost or 0.0, matrix[truth, np.maximum(decision, 0)])
    return float(np.average(costs, weights=sample_weight))


def risk_coverage_curve(
    proba, y_true, cost_matrix=None, *, labels=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Risk of the accepted samples against coverage, for every reject threshold.

    The reject option of :func:`bayes_decision` accepts sample ``i`` when its smallest
    expected cost ``min_p (proba @ cost_matrix)[i, p]`` is at most ``reject_cost``. Sweeping
    ``reject_cost`` over those values gives, for each threshold, the share of samples
    accepted (coverage) and the mean realised cost of the Bayes decision on them (risk).
    Without a cost matrix the 0-1 cost is used: the score is ``1 - max_k p_k`` and the risk
    is the error rate of ``argmax`` on the accepted samples (the curve of Geifman and
    El-Yaniv, 2017).

    Parameters
    ----------
    proba : array-like of shape (n_samples, K)
    y_true : array-like of shape (n_samples,)
    cost_matrix : array-like of shape (K, K), optional
        Defaults to the 0-1 cost ``1 - I``.
    labels : array-like of shape (K,), optional
        Class label of each column (see :func:`softmaxreg.metrics.encode_labels`).

    Returns
    -------
    coverage : ndarray of shape (n_thresholds,)
        Increasing, ending at 1.
    risk : ndarray of shape (n_thresholds,)
        Mean cost over the accepted samples.
    thresholds : ndarray of shape (n_thresholds,)
        The ``reject_cost`` giving each point: all distinct expected-cost values, increasing.
    """
    proba = check_proba(proba)
    n_samples, n_classes = proba.shape
    matrix = zero_one_cost(n_classes) if cost_matrix is None else cost_matrix
    matrix = check_cost_matrix(matrix, n_classes)
    truth = encode_labels(y_true, n_classes, labels)
    if truth.shape[0] != n_samples:
        raise ValueError(f"y_true has {truth.shape[0]} samples but proba has {n_samples} rows.")
    costs = proba @ matrix
    decision = np.argmin(costs, axis=1)
    score = costs[np.arange(n_samples), decision]
    realised = matrix[truth, decision]
    order = np.argsort(score, kind="stable")
    score, realised = score[order], realised[order]
    cumulative = np.cumsum(realised)
    # a threshold accepts every sample with score <= it: keep the last of each run of ties
    last_of_run = np.append(score[1:] != score[:-1], True)
    accepted = np.arange(1, n_samples + 1)[last_of_run]
    coverage = accepted / n_samples
    risk = cumulative[last_of_run] / accepted
    return coverage, risk, score[last_of_run]


# ---------------------------------------------------------------------- estimators
def _has_proba(estimator) -> bool:
    return hasattr(estimator, "predict_proba")


def _labels_with_reject(classes: np.ndarray, indices: np.ndarray, reject_label) -> np.ndarray:
    """Map class indices to labels, -1 to ``reject_label`` (dtype widened when needed)."""
    rejected = indices == REJECT
    if not np.any(rejected):
        return classes[indices]
    dtype = np.result_type(classes.dtype, np.asarray(reject_label).dtype)
    if classes.dtype.kind in "USO" or dtype.kind in "USO":
        dtype = object  # never truncate a label to the width of the class strings
    out = np.empty(indices.shape[0], dtype=dtype)
    out[~rejected] = classes[indices[~rejected]]
    out[rejected] = reject_label
    return out


def _check_reject_label(reject_label, classes) -> None:
    # compare one by one: an array comparison of str classes with an int label is ill-defined
    if any(label == reject_label for label in np.asarray(classes).tolist()):
        raise ValueError(
            f"reject_label={reject_label!r} is also a class label; choose another reject_label."
        )


class _DecisionMixin:
    """Shared ``predict`` machinery: ``_decide(proba) -> class indices``."""

    def _decide(self, proba):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X):
        """Probabilities of the fitted inner estimator, ndarray of shape (n_samples, K)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def decide(self, X) -> np.ndarray:
        """The decision as class indices, -1 for an abstention; ndarray of shape (n_samples,)."""
        return self._decide(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Class labels of the decision; abstentions are ``reject_label``.

        Returns
        -------
        ndarray of shape (n_samples,)
            ``classes_`` entries, and ``reject_label`` where the rule abstains (the dtype is
            widened, e.g. to object, when ``reject_label`` does not fit that of the classes).
        """
        return _labels_with_reject(self.classes_, self.decide(X), self.reject_label)

    def score(self, X, y, sample_weight=None) -> float:
        """Negative mean realised cost of the decisions (higher is better, 0 is perfect).

        This replaces accuracy so that model selection (``GridSearchCV``,
        ``cross_val_score``) optimises what the decision is for; for
        :class:`TunedClassWeightClassifier` without a cost matrix it is the tuned metric.
        """
        return -average_cost(
            y,
            self.decide(X),
            self._cost_matrix_,
            self.reject_cost,
            labels=self.classes_,
            sample_weight=sample_weight,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = self.estimator.__sklearn_tags__()
        except AttributeError:  # pragma: no cover - estimator without tags
            return tags
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


class CostSensitiveClassifier(_DecisionMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Predict the class of least expected cost under a cost matrix, optionally abstaining.

    ``fit`` clones and fits ``estimator``; ``predict`` applies :func:`bayes_decision` to its
    ``predict_proba``. The probabilities are taken at face value: the better calibrated they
    are, the closer the decisions are to optimal.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
    cost_matrix : array-like of shape (K, K) or DataFrame
        ``cost_matrix[true, predicted]`` in the order of ``classes_`` (a DataFrame indexed
        by the class labels is reordered to match).
    reject_cost : float, optional
        Cost of abstaining; ``predict`` returns ``reject_label`` where every class costs more.
    reject_label : default=-1
        The label ``predict`` gives an abstention. It must not be a class label.

    Attributes
    ----------
    estimator_ : the fitted clone of ``estimator``
    classes_ : ndarray of shape (K,)
    n_features_in_ : int
    feature_names_in_ : ndarray, when the inner estimator has it

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from softmaxreg import SoftmaxRegression
    >>> X, y = load_wine(return_X_y=True)
    >>> cost = [[0, 1, 1], [5, 0, 1], [1, 1, 0]]   # missing class 1 costs 5
    >>> model = CostSensitiveClassifier(SoftmaxRegression(C=0.01), cost).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(self, estimator, cost_matrix, reject_cost=None, reject_label=REJECT):
        self.estimator = estimator
        self.cost_matrix = cost_matrix
        self.reject_cost = reject_cost
        self.reject_label = reject_label

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` and check the cost matrix against its classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : passed to ``estimator.fit`` (e.g. ``sample_weight``)

        Returns
        -------
        self
        """
        if not _has_proba(self.estimator):
            raise ValueError(
                f"estimator must have predict_proba; {type(self.estimator).__name__} has not."
            )
        _check_reject_cost(self.reject_cost)
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        _copy_fitted_attributes(self, self.estimator_)
        self._cost_matrix_ = check_cost_matrix(self.cost_matrix, len(self.classes_), self.classes_)
        if self.reject_cost is not None:
            _check_reject_label(self.reject_label, self.classes_)
        return self

    def _decide(self, proba):
        return bayes_decision(proba, self._cost_matrix_, self.reject_cost)

    def expected_cost(self, X) -> np.ndarray:
        """Expected cost of predicting each class, ndarray of shape (n_samples, K)."""
        return self.predict_proba(X) @ self._cost_matrix_


def _copy_fitted_attributes(meta, inner) -> None:
    meta.classes_ = np.asarray(inner.classes_)
    for name in ("n_features_in_", "feature_names_in_"):
        if hasattr(inner, name):
            setattr(meta, name, getattr(inner, name))


# Metrics that the tuner can maximise by name: name -> (function(y_true, y_pred), kwargs)
def _metric_table() -> dict[str, Callable]:
    from functools import partial

    from sklearn import metrics

    return {
        "accuracy": metrics.accuracy_score,
        "balanced_accuracy": metrics.balanced_accuracy_score,
        "f1_macro": partial(metrics.f1_score, average="macro", zero_division=0),
        "f1_weighted": partial(metrics.f1_score, average="weighted", zero_division=0),
        "recall_macro": partial(metrics.recall_score, average="macro", zero_division=0),
        "precision_macro": partial(metrics.precision_score, average="macro", zero_division=0),
        "matthews_corrcoef": metrics.matthews_corrcoef,
        "cohen_kappa": metrics.cohen_kappa_score,
    }


class TunedClassWeightClassifier(
    _DecisionMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    """Bayes decisions on reweighted probabilities, the weights tuned by cross-validation.

    The decision is ``bayes_decision(normalise(w * proba), cost_matrix, reject_cost)`` with a
    positive weight ``w_k`` per class (with the 0-1 cost: ``argmax_k w_k p_k``). Weights of 1
    give the plain rule; other weights correct probabilities that are miscalibrated or fitted
    under other class priors (a prior shift multiplies ``p_k`` by a per-class factor, exactly
    this family), and let a metric such as balanced accuracy or macro-F1 be maximised.

    ``fit`` collects out-of-fold probabilities with :func:`sklearn.model_selection.
    cross_val_predict`, searches the log-weights class by class (a coordinate search on a
    grid that is refined ``n_refinements`` times; the objective is piecewise constant, so no
    gradient exists), keeps the best, and refits ``estimator`` on all the data.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
    cost_matrix : array-like of shape (K, K), optional
        ``cost_matrix[true, predicted]``. Without it the 0-1 cost is used for the rule.
    scoring : str or callable, optional
        What to maximise on the out-of-fold decisions: a name among "accuracy",
        "balanced_accuracy", "f1_macro", "f1_weighted", "recall_macro", "precision_macro",
        "matthews_corrcoef", "cohen_kappa", or ``f(y_true, y_pred) -> float`` (higher is
        better). Default: minimise the mean cost when ``cost_matrix`` is given, otherwise
        maximise balanced accuracy.
    reject_cost : float, optional
        Cost of abstaining (requires ``cost_matrix`` or uses the 0-1 cost).
    reject_label : default=-1
        The label ``predict`` gives an abstention.
    cv : int, CV splitter or iterable, default=5
        Stratified K-fold for an int, as everywhere in scikit-learn.
    max_weight_ratio : float, default=100
        The search explores weights within this factor of 1 in each direction at first.
    n_grid : int, default=17
        Grid points per coordinate step.
    n_refinements : int, default=3
        Times the grid is narrowed around the best weights.

    Attributes
    ----------
    estimator_ : the inner estimator refitted on all the data
    class_weights_ : ndarray of shape (K,)
        The tuned weights, normalised to geometric mean 1.
    best_score_ : float
        The objective at ``class_weights_`` on the out-of-fold probabilities (mean cost when
        minimising cost, otherwise the metric).
    baseline_score_ : float
        The same objective with all weights 1 (the plain rule), for comparison.
    classes_ : ndarray of shape (K,)

    Notes
    -----
    Scores on the data used for tuning are optimistic; judge the tuned model on held-out data.
    """

    def __init__(
        self,
        estimator,
        cost_matrix=None,
        *,
        scoring=None,
        reject_cost=None,
        reject_label=REJECT,
        cv=5,
        max_weight_ratio=100.0,
        n_grid=17,
        n_refinements=3,
    ):
        self.estimator = estimator
        self.cost_matrix = cost_matrix
        self.scoring = scoring
        self.reject_cost = reject_cost
        self.reject_label = reject_label
        self.cv = cv
        self.max_weight_ratio = max_weight_ratio
        self.n_grid = n_grid
        self.n_refinements = n_refinements

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        if not _has_proba(self.estimator):
            raise ValueError(
                f"estimator must have predict_proba; {type(self.estimator).__name__} has not."
            )
        _check_reject_cost(self.reject_cost)
        ratio = self.max_weight_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 1 < ratio < 1e12:
            raise ValueError(f"max_weight_ratio must be a number in (1, 1e12); got {ratio!r}.")
        for name, low in (("n_grid", 3), ("n_refinements", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        if self.scoring is not None and not callable(self.scoring):
            table = _metric_table()
            if self.scoring not in table:
                raise ValueError(
                    f"scoring must be a callable or one of {sorted(table)}; got {self.scoring!r}."
                )

    def _objective(self, truth: np.ndarray, matrix: np.ndarray, weights) -> Callable:
        """``loss(decision) -> float`` to minimise, on class indices of the OOF samples."""
        if self.scoring is None and self.cost_matrix is not None:
            reject = 0.0 if self.reject_cost is None else float(self.reject_cost)

            def mean_cost(decision):
                costs = np.where(decision == REJECT, reject, matrix[truth, decision])
                return float(np.average(costs, weights=weights))

            return mean_cost
        metric = self.scoring if callable(self.scoring) else None
        if metric is None:
            metric = _metric_table()[self.scoring or "balanced_accuracy"]
        if weights is not None:
            from functools import partial

            metric = partial(metric, sample_weight=weights)

        def negative_metric(decision):
            return -float(metric(truth, decision))

        return negative_metric

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, **fit_params):
        """Tune the class weights on out-of-fold probabilities, then refit on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : passed to ``estimator.fit``; ``sample_weight`` also weights the
            tuning objective.

        Returns
        -------
        self
        """
        self._check_params()
        y_array = np.asarray(y)
        cv = check_cv(self.cv, y_array, classifier=True)
        oof = cross_val_predict(
            clone(self.estimator),
            X,
            y,
            cv=cv,
            method="predict_proba",
            params=fit_params or None,
        )
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        _copy_fitted_attributes(self, self.estimator_)
        n_classes = len(self.classes_)
        if oof.shape[1] != n_classes:
            raise ValueError(
                f"some cross-validation folds lack classes ({oof.shape[1]} probability columns "
                f"for {n_classes} classes); use fewer folds or a stratified splitter."
            )
        matrix = (
            zero_one_cost(n_classes)
            if self.cost_matrix is None
            else check_cost_matrix(self.cost_matrix, n_classes, self.classes_)
        )
        self._cost_matrix_ = matrix
        if self.reject_cost is not None:
            _check_reject_label(self.reject_label, self.classes_)
        truth = encode_labels(y_array, n_classes, self.classes_)
        sample_weight = fit_params.get("sample_weight")
        loss = self._objective(truth, matrix, sample_weight)
        log_weights, best, baseline = self._search(check_proba(oof), matrix, loss)
        self.class_weights_ = np.exp(log_weights - log_weights.mean())
        sign = 1.0 if self.scoring is None and self.cost_matrix is not None else -1.0
        self.best_score_ = sign * best
        self.baseline_score_ = sign * baseline
        return self

    def _rule(self, proba, log_weights, matrix):
        """``bayes_decision`` on the reweighted probabilities (inputs already validated: this
        runs thousands of times in the search)."""
        weighted = proba * np.exp(log_weights - log_weights.max())
        weighted /= weighted.sum(axis=1, keepdims=True)
        costs = weighted @ matrix
        decision = np.argmin(costs, axis=1)
        if self.reject_cost is not None:
            best = costs[np.arange(costs.shape[0]), decision]
            decision[best > self.reject_cost] = REJECT
        return decision

    def _search(self, proba, matrix, loss):
        """Coordinate search over log-weights; returns (log_weights, best, baseline)."""
        n_classes = proba.shape[1]
        # The objective is piecewise constant: many grid points give the same decisions, and
        # scikit-learn's metrics cost milliseconds a call, so remember values by decisions.
        memo: dict[bytes, float] = {}
        raw_loss = loss

        def loss(decision):
            key = hashlib.blake2b(decision.tobytes(), digest_size=16).digest()
            if key not in memo:
                memo[key] = raw_loss(decision)
            return memo[key]

        log_weights = np.zeros(n_classes)
        baseline = best = loss(self._rule(proba, log_weights, matrix))
        half_width = np.log(self.max_weight_ratio)
        for _ in range(self.n_refinements + 1):
            offsets = np.linspace(-half_width, half_width, self.n_grid)
            # ties prefer the smallest move: fewer changes fitted to the noise of the folds
            offsets = offsets[np.argsort(np.abs(offsets), kind="stable")]
            improved = True
            sweeps = 0
            while improved and sweeps < 10:
                improved = False
                sweeps += 1
                for k in range(n_classes):
                    start = log_weights[k]
                    best_offset = 0.0
                    for offset in offsets:
                        if offset == 0.0:
                            continue
                        log_weights[k] = start + offset
                        value = loss(self._rule(proba, log_weights, matrix))
                        if value < best - 1e-12:
                            best, best_offset, improved = value, offset, True
                    log_weights[k] = start + best_offset
            half_width *= 2.0 / (self.n_grid - 1)
        return log_weights, best, baseline

    def _decide(self, proba):
        check_is_fitted(self, "class_weights_")
        return self._rule(check_proba(proba), np.log(self.class_weights_), self._cost_matrix_)

    def score(self, X, y, sample_weight=None) -> float:
        """The tuned objective on ``(X, y)``, higher is better: the negative mean cost when
        tuning for cost, otherwise the metric named by ``scoring``."""
        check_is_fitted(self, "class_weights_")
        truth = encode_labels(np.asarray(y), len(self.classes_), self.classes_)
        loss = self._objective(truth, self._cost_matrix_, sample_weight)
        return -loss(self.decide(X))
