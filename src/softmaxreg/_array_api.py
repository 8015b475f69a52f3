"""Array API inputs (PyTorch tensors, CuPy arrays): the objective and the estimator glue.

Choice of what lives where: the data (X, class codes, weights) and every n-sized intermediate
stay in the input's namespace and on its device (``_loss``'s array API branch); the parameters
and everything parameter-sized ([K, p], [K, K], [p, p]) are NumPy arrays on the host. The
solvers therefore run unchanged (they use ``np.vdot``, ``np.linalg`` ... on small arrays) and a
pass moves only ``O(K * p)`` numbers between host and device. Fitted attributes are converted
to the input's namespace and device at the end of ``fit``.
"""

from __future__ import annotations

import numpy as np

from . import _loss
from ._objective import SoftmaxObjective

__all__ = ["ArrayAPIObjective", "prepare_fit", "to_namespace", "predict"]


class ArrayAPIObjective(SoftmaxObjective):
    """``SoftmaxObjective`` on array API data; NumPy parameters and results.

    Parameters
    ----------
    X : array of shape (n, d), float32 or float64, any device
    y : integer array of shape (n,), class codes ``0..K-1``, same namespace and device
    n_classes : int
    sample_weight : array of shape (n,) or None, same namespace, dtype and device as X
    fit_intercept : bool
    C : float
    penalty : Penalty
    """

    @staticmethod
    def _data_dtype(X) -> np.dtype:
        return _loss._numpy_dtype(X)

    @staticmethod
    def _total_weight(X, sample_weight) -> float:
        if sample_weight is None:
            return float(X.shape[0])
        xp = _loss._namespace(X)
        return float(xp.sum(xp.astype(sample_weight, xp.float64)))

    def initial_params(self) -> np.ndarray:
        """Zero coefficients; intercepts at the log of the weighted class frequencies."""
        params = np.zeros(self.shape, dtype=self.dtype)
        if self.fit_intercept:
            xp = _loss._namespace(self.X)
            weights = self.sample_weight
            counts = np.array(
                [
                    float(
                        xp.sum(xp.astype(self.y == k, self.X.dtype))
                        if weights is None
                        else xp.sum(xp.where(self.y == k, weights, 0))
                    )
                    for k in range(self.n_classes)
                ]
            )
            log_freq = np.log(np.maximum(counts / counts.sum(), 1e-12))
            params[:, -1] = log_freq - log_freq.mean()
        return params

    def hessian_diagonal(self, params) -> np.ndarray:
        return self.loss_gradient_hessp(params)[2].diagonal()


def prepare_fit(estimator, X, y, sample_weight):
    """Validate array API inputs and build the objective.

    Returns
    -------
    objective : ArrayAPIObjective
    classes : ndarray of shape (K,), on the host
    y_namespace : bool
        Whether y was an array of X's namespace (then ``classes_`` goes there too).
    """
    from array_api_compat import device

    from ._penalties import Penalty
    from ._validation import (
        check_label_values,
        check_sample_weight,
        class_weight_vector,
        require_two_classes,
        unique_labels,
    )

    xp = _loss._namespace(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array for X; got {X.ndim} dimensions.")
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples; at least one is required.")
    if X.dtype not in (xp.float32, xp.float64):
        X = xp.astype(X, xp.float64)
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError("X contains NaN or infinity.")
    dev = device(X)
    y_in_namespace = type(y).__module__.split(".")[0] == type(X).__module__.split(".")[0]
    if y_in_namespace:
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D; got shape {tuple(y.shape)}.")
        classes_x, codes = xp.unique_inverse(y)
        classes = _loss.to_host(classes_x)
        check_label_values(classes)  # the in-memory checks, on the distinct labels
        codes = xp.asarray(codes, device=dev)
    else:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D; got shape {y.shape}.")
        check_label_values(y)
        classes, codes_host = unique_labels(y, return_inverse=True)
        codes = xp.asarray(codes_host.astype(np.int64), device=dev)  # one transfer of y
    if codes.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {codes.shape[0]}.")
    require_two_classes(classes, "SoftmaxRegression")
    dtype = _loss._numpy_dtype(X)
    weights = None
    if sample_weight is not None:
        host = _loss.to_host(sample_weight) if not np.isscalar(sample_weight) else sample_weight
        weights = check_sample_weight(host, X.shape[0], dtype)
    if estimator.class_weight is not None:
        labels = classes[_loss.to_host(codes)]  # class_weight needs the labels: a host copy
        per_class = class_weight_vector(estimator.class_weight, classes, labels, weights)
        per_sample = per_class[_loss.to_host(codes)].astype(dtype)
        weights = per_sample if weights is None else weights * per_sample
    total = None if weights is None else xp.asarray(weights, device=dev)
    penalty = Penalty.from_params(estimator.penalty, estimator.l1_ratio)
    objective = ArrayAPIObjective(
        X, codes, classes.shape[0], total, estimator.fit_intercept, estimator.C, penalty
    )
    return objective, classes, y_in_namespace


def to_namespace(estimator, like, classes_too: bool) -> None:
    """Move ``coef_``, ``intercept_`` (and ``classes_``) to the namespace and device of
    ``like``."""
    from array_api_compat import device

    xp = _loss._namespace(like)
    dev = device(like)
    estimator.coef_ = xp.asarray(estimator.coef_, device=dev)
    estimator.intercept_ = xp.asarray(estimator.intercept_, device=dev)
    if classes_too:
        estimator.classes_ = xp.asarray(estimator.classes_, device=dev)


def predict(estimator, X, kind: str):
    """``predict`` / ``predict_proba`` / ``predict_log_proba`` / ``decision_function`` on
    array API input, computed in its namespace and on its device."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    xp = _loss._namespace(X)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[-1]} features, but SoftmaxRegression is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    coef, intercept = estimator.coef_, estimator.intercept_
    if isinstance(coef, np.ndarray):  # fitted on NumPy, predicting on another namespace
        coef = _loss.to_device(coef, X)
        intercept = _loss.to_device(intercept, X)
    if X.dtype != coef.dtype:
        X = xp.astype(X, coef.dtype)
    # rows that overflow are repaired as for NumPy input (see _loss.prediction_scores)
    scores = _loss.prediction_scores(X, coef, intercept, shifted=kind != "decision_function")
    if kind == "predict_proba":
        return _loss.softmax(scores)
    if kind == "predict_log_proba":
        return _loss.log_softmax(scores)
    if kind == "decision_function":
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores
    index = xp.argmax(scores, axis=1)
    classes = estimator.classes_
    if isinstance(classes, np.ndarray):
        return classes[_loss.to_host(index)]
    return xp.take(classes, index, axis=0)
