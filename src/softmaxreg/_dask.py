"""The softmax objective over the blocks of a Dask array, feeding the same solvers.

Data flow (what travels where):

- ``X``, ``y`` (as class codes) and the weights are computed once per fit into one future per
  row block (``client.compute`` of the blocks): the blocks live in the workers' memory for the
  whole fit and are never gathered to the client.
- Every evaluation sends the parameters [K, p] with one task per block, which calls the pure
  functions of ``_loss`` on that block; the parameter-sized partial results (loss, gradient
  [K, p], Hessian-vector product [K, p], class curvature [K, K], feature gram [p, p]) are
  summed by a tree of ``_add`` tasks on the workers, and only the root comes to the client.
- ``loss_gradient_hessp`` keeps, on the worker of each block, the ``_loss.HessianProduct`` of
  that block (the block's probabilities [n_b, K] at the point): Hessian-vector products are
  then one task per block with the direction as argument, with no probabilities sent anywhere.
- Fault tolerance comes from the lineage: every future is a task of the graph of the input
  array, so when a worker dies the scheduler recomputes its blocks and block operators on the
  surviving (or restarted) workers, and the fit goes on with the same numbers.

``DaskSoftmaxObjective`` implements the protocol of ``_objective.SoftmaxObjective`` (it reuses
the penalty and scaling code of that class) so lbfgs and newton-cg run unchanged.

Every wait for the cluster is bounded: a result that does not come within the Dask setting
``softmaxreg.dask-timeout`` (seconds, default :data:`DEFAULT_TIMEOUT`; e.g.
``dask.config.set({"softmaxreg.dask-timeout": 60})``) raises ``TimeoutError``, so a fit on a
cluster whose workers stopped answering (SIGSTOP, a hung node) fails instead of waiting
forever. The inputs get the in-memory fit's checks of labels and weights, computed on the
workers: the distinct labels (continuous floats, NaN or None are refused with the same
messages) and the finiteness, minimum and sum of the weights.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _loss
from ._objective import ScaledHessian, SoftmaxObjective

__all__ = ["DaskSoftmaxObjective", "is_dask_collection", "prepare_fit", "predict_lazy"]

_TREE_ARITY = 8
#: Seconds to wait for any one result from the cluster (a pass, a reduction) by default.
DEFAULT_TIMEOUT = 600.0


def fit_timeout() -> float:
    """The Dask setting ``softmaxreg.dask-timeout``, or :data:`DEFAULT_TIMEOUT`."""
    import dask

    timeout = dask.config.get("softmaxreg.dask-timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        timeout = -1.0
    if not timeout > 0:
        raise ValueError(
            "the Dask setting softmaxreg.dask-timeout must be a positive number of seconds; "
            f"got {dask.config.get('softmaxreg.dask-timeout')!r}."
        )
    return timeout


def _result(future, timeout: float):
    """``future.result()``, or a clear ``TimeoutError`` after ``timeout`` seconds."""
    try:
        return future.result(timeout=timeout)
    except TimeoutError:  # distributed's TimeoutError is the builtin one
        raise TimeoutError(
            f"the Dask cluster did not return a result within {timeout:g} s: its workers may "
            "be stopped, hung or overloaded. The wait is set by the Dask setting "
            "softmaxreg.dask-timeout (seconds)."
        ) from None


def _compute(client, collection, timeout: float):
    """Compute a Dask collection (or a list of them) on ``client``, waiting at most
    ``timeout`` seconds."""
    futures = client.compute(collection)
    if not isinstance(futures, list):
        return _result(futures, timeout)
    return [_result(future, timeout) for future in futures]


def is_dask_collection(obj) -> bool:
    """True for dask arrays, dataframes and series (checked without importing dask)."""
    return type(obj).__module__.split(".")[0] == "dask"


# ---------------------------------------------------------------- block tasks (run on workers)
def _add(*parts):
    """Sum of partial results: floats, arrays, or tuples of them."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_add(*items) for items in zip(*parts, strict=True))
    total = first.copy() if isinstance(first, np.ndarray) else first
    for part in parts[1:]:
        total = total + part
    return total


def _block_loss(X, y, w, params, fit_intercept):
    return _loss.loss(X, y, params, w, fit_intercept)


def _block_loss_gradient(X, y, w, params, fit_intercept):
    return _loss.loss_gradient(X, y, params, w, fit_intercept)


def _block_loss_gradient_hessp(X, y, w, params, fit_intercept):
    return _loss.loss_gradient_hessp(X, y, params, w, fit_intercept)


def _value_gradient(triple):
    return triple[0], triple[1]


def _operator(triple):
    return triple[2]


def _hessp(operator, direction):
    return operator(direction)


def _class_curvature(operator):
    return operator.class_curvature()


def _diagonal(operator):
    return operator.diagonal()


def _feature_gram(X, w, fit_intercept):
    return _loss.feature_gram(X, w, fit_intercept)


def _hessian(X, y, w, params, fit_intercept):
    return _loss.hessian(X, y, params, w, fit_intercept)


def _class_counts(y, w, n_classes):
    return np.bincount(y, weights=w, minlength=n_classes).astype(np.float64)


def _weight_sum(X, w):
    return float(X.shape[0]) if w is None else float(w.sum(dtype=np.float64))


def _encode(block, classes):
    codes = np.searchsorted(classes, block).astype(np.intp)
    return codes


def _per_class(block, weights):
    return weights[block]


# prediction_scores as in SoftmaxRegression: rows that overflow give finite probabilities
def _proba_block(block, coef, intercept):
    return _loss.softmax(_loss.prediction_scores(block, coef, intercept, shifted=True))


def _log_proba_block(block, coef, intercept):
    return _loss.log_softmax(_loss.prediction_scores(block, coef, intercept, shifted=True))


def _scores_block(block, coef, intercept):
    return _loss.prediction_scores(block, coef, intercept)


def _label_block(block, coef, intercept, classes):
    scores = _loss.prediction_scores(block, coef, intercept, shifted=True)
    return classes[np.argmax(scores, axis=1)]


# ---------------------------------------------------------------- the objective
def _client():
    from ._optional import require

    get_client = require("distributed", "Dask input").get_client
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "Dask input is fitted on the cluster of the current distributed.Client, but there "
            "is none: create one first, e.g. Client() for a local cluster or "
            "Client('tcp://scheduler:8786')."
        ) from None


class _DaskHessianProduct:
    """Data Hessian at one point: one ``_loss.HessianProduct`` future per block."""

    def __init__(self, objective: DaskSoftmaxObjective, operators):
        self._objective = objective
        self._operators = operators

    def __call__(self, direction: np.ndarray) -> np.ndarray:
        direction = np.ascontiguousarray(direction)
        return self._objective._reduce(_hessp, self._operators, direction=direction)

    def class_curvature(self) -> np.ndarray:
        return self._objective._reduce(_class_curvature, self._operators)

    def diagonal(self) -> np.ndarray:
        return self._objective._reduce(_diagonal, self._operators)


class DaskSoftmaxObjective(SoftmaxObjective):
    """Scaled softmax objective over the row blocks of Dask arrays on a ``distributed`` cluster.

    Parameters
    ----------
    X : dask.array of shape (n, d)
        Row-chunked, one chunk across the columns.
    y : dask.array of shape (n,)
        Integer class codes ``0..K-1`` with the row chunks of ``X``.
    n_classes : int
    sample_weight : dask.array of shape (n,) or None
        Total weights ``s_i`` with the row chunks of ``X``.
    fit_intercept : bool
    C : float
    penalty : Penalty
    client : distributed.Client
    timeout : float or None
        Seconds to wait for any one result (None: :data:`DEFAULT_TIMEOUT`).

    Notes
    -----
    Every method returns NumPy arrays of parameter size ([K, p], [K, K], [p, p] or
    [K*p, K*p] for ``hessian``) and floats; nothing of size n reaches the client.
    """

    def __init__(
        self, X, y, n_classes, sample_weight, fit_intercept, C, penalty, client, timeout=None
    ):
        self.client = client
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.X = X  # kept for the shape checks of the solvers (dense -> Kronecker)
        self.n_classes = int(n_classes)
        self.fit_intercept = bool(fit_intercept)
        self.C = float(C)
        self.penalty = penalty
        self.dtype = np.dtype(X.dtype)
        # one future per block; the futures keep the blocks in the workers' memory
        self._X = client.compute(list(X.to_delayed().ravel()))
        self._y = client.compute(list(y.to_delayed().ravel()))
        self._w = (
            [None] * len(self._X)
            if sample_weight is None
            else client.compute(list(sample_weight.to_delayed().ravel()))
        )
        self.sample_weight = sample_weight
        self.weight_sum = self._reduce_data(_weight_sum, with_y=False)
        self._set_scaling(X.shape[1])
        self._feature_gram = None

    # ------------------------------------------------------------ reductions
    def _tree_sum(self, futures):
        client = self.client
        while len(futures) > 1:
            futures = [
                client.submit(_add, *futures[i : i + _TREE_ARITY], pure=False)
                for i in range(0, len(futures), _TREE_ARITY)
            ]
        return _result(futures[0], self.timeout)

    def _reduce(self, func, operators, **kwargs):
        futures = [self.client.submit(func, op, pure=False, **kwargs) for op in operators]
        return self._tree_sum(futures)

    def _map_data(self, func, *args, with_y=True):
        client = self.client
        if with_y:
            blocks = zip(self._X, self._y, self._w, strict=True)
        else:
            blocks = zip(self._X, self._w, strict=True)
        return [client.submit(func, *block, *args, pure=False) for block in blocks]

    def _reduce_data(self, func, *args, with_y=True):
        return self._tree_sum(self._map_data(func, *args, with_y=with_y))

    # ------------------------------------------------------------ protocol
    def initial_params(self) -> np.ndarray:
        """Zero coefficients; intercepts at the log of the weighted class frequencies."""
        params = np.zeros(self.shape, dtype=self.dtype)
        if self.fit_intercept:
            client = self.client
            counts = self._tree_sum(
                [
                    client.submit(_class_counts, y, w, self.n_classes, pure=False)
                    for y, w in zip(self._y, self._w, strict=True)
                ]
            )
            log_freq = np.log(np.maximum(counts / counts.sum(), 1e-12))
            params[:, -1] = log_freq - log_freq.mean()
        return params

    def loss(self, params) -> float:
        params = np.ascontiguousarray(params, dtype=self.dtype)
        value = self._reduce_data(_block_loss, params, self.fit_intercept) / self.weight_sum
        return value + self._ridge_value(params)

    def loss_gradient(self, params):
        params = np.ascontiguousarray(params, dtype=self.dtype)
        value, gradient = self._reduce_data(_block_loss_gradient, params, self.fit_intercept)
        value /= self.weight_sum
        gradient /= self.weight_sum
        return self._add_ridge(value, gradient, params), gradient

    def loss_gradient_hessp(self, params):
        params = np.ascontiguousarray(params, dtype=self.dtype)
        triples = self._map_data(_block_loss_gradient_hessp, params, self.fit_intercept)
        client = self.client
        operators = [client.submit(_operator, t, pure=False) for t in triples]
        value, gradient = self._tree_sum(
            [client.submit(_value_gradient, t, pure=False) for t in triples]
        )
        del triples  # the operators keep what they need (X block and probabilities)
        value /= self.weight_sum
        gradient /= self.weight_sum
        value = self._add_ridge(value, gradient, params)
        return value, gradient, ScaledHessian(self, _DaskHessianProduct(self, operators))

    def feature_gram(self) -> np.ndarray:
        if self._feature_gram is None:
            gram = self._reduce_data(_feature_gram, self.fit_intercept, with_y=False)
            self._feature_gram = gram / self.weight_sum
        return self._feature_gram

    def hessian(self, params) -> np.ndarray:
        params = np.ascontiguousarray(params, dtype=self.dtype)
        return self._scaled_hessian(self._reduce_data(_hessian, params, self.fit_intercept))

    def hessian_diagonal(self, params) -> np.ndarray:
        return self.loss_gradient_hessp(params)[2].diagonal()

    def check_finite(self, params) -> None:
        """Raise ``ValueError`` when the loss or gradient at ``params`` is not finite: the
        lazy NaN/inf check of the data (a non-finite entry of X makes its row's loss NaN)."""
        value, gradient = self.loss_gradient(params)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            raise ValueError(
                "The loss over the Dask blocks is not finite: X or sample_weight contains NaN "
                "or infinity."
            )

    def release(self) -> None:
        """Drop the futures of the blocks (the workers free them)."""
        self._X = self._y = self._w = []


# ---------------------------------------------------------------- estimator glue
def _to_array(frame, client, timeout: float):
    """A dask dataframe or series as a dask array with known row chunks (the partition
    lengths computed under the timeout)."""
    lengths = _compute(client, frame.map_partitions(len), timeout)
    return frame.to_dask_array(lengths=[int(n) for n in lengths])


def _as_arrays(X, y, sample_weight, client, timeout: float):
    import dask.array as da
    import dask.dataframe as dd

    feature_names = None
    if isinstance(X, dd.DataFrame):
        feature_names = np.asarray(X.columns, dtype=object)
        X = _to_array(X, client, timeout)
    elif not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X))
    if isinstance(y, dd.Series | dd.DataFrame):
        y = _to_array(y, client, timeout)
    if isinstance(sample_weight, dd.Series):
        sample_weight = _to_array(sample_weight, client, timeout)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array for X; got {X.ndim} dimensions.")
    if X.dtype not in (np.float32, np.float64):
        if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
            raise ValueError(f"X must be numeric; got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if any(np.isnan(c) for c in X.chunks[0]):
        # what compute_chunk_sizes does, with the timeout: the rows of each row block
        import dask

        rows = [dask.delayed(_block_rows)(block) for block in X.to_delayed()[:, 0]]
        X._chunks = (tuple(int(n) for n in _compute(client, rows, timeout)),) + X.chunks[1:]
    X = X.rechunk({1: -1})
    if not isinstance(y, da.Array):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D; got shape {y.shape}.")
        y = da.from_array(y, chunks=(X.chunks[0],))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D; got {y.ndim} dimensions.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
    y = y.rechunk((X.chunks[0],))
    if sample_weight is not None:
        if not isinstance(sample_weight, da.Array):
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.ndim == 0:
                sample_weight = np.full(X.shape[0], float(sample_weight))
            sample_weight = da.from_array(sample_weight, chunks=(X.chunks[0],))
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape}; expected ({X.shape[0]},)."
            )
        sample_weight = sample_weight.astype(X.dtype).rechunk((X.chunks[0],))
    return X, y, sample_weight, feature_names


def _block_rows(block) -> int:
    return block.shape[0]


def _block_labels(block):
    """The distinct labels of a block; in first-seen order when they cannot be sorted (the
    client then raises the in-memory fit's error for them)."""
    try:
        return np.unique(block)
    except TypeError:
        return np.array(list(dict.fromkeys(block.tolist())), dtype=object)


def prepare_fit(estimator, X, y, sample_weight):
    """Validate Dask inputs and build the objective.

    Returns
    -------
    objective : DaskSoftmaxObjective
    classes : ndarray of shape (K,)
    feature_names : ndarray of shape (d,) or None
    """
    import dask.array as da

    from ._penalties import Penalty
    from ._validation import (
        check_label_values,
        check_weight_values,
        class_weight_vector,
        require_two_classes,
        unique_labels,
    )

    client = _client()
    timeout = fit_timeout()
    X, y, sample_weight, feature_names = _as_arrays(X, y, sample_weight, client, timeout)
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples; at least one is required.")
    if sample_weight is not None:
        # the in-memory checks, from three numbers computed on the workers
        finite, low, total = _compute(
            client,
            [
                da.isfinite(sample_weight).all(),
                sample_weight.min(),
                sample_weight.sum(dtype=np.float64),
            ],
            timeout,
        )
        check_weight_values(bool(finite), float(low), float(total), X.dtype)
    # class-sized: the distinct labels of every block, merged and checked here with the
    # in-memory fit's checks (continuous, NaN, None, types that cannot be ordered)
    n_blocks = len(y.chunks[0])
    distinct = y.map_blocks(_block_labels, chunks=((np.nan,) * n_blocks,), dtype=y.dtype)
    labels = np.asarray(_compute(client, distinct, timeout))
    check_label_values(labels)
    classes = unique_labels(labels)
    require_two_classes(classes, "SoftmaxRegression")
    codes = y.map_blocks(functools.partial(_encode, classes=classes), dtype=np.intp)
    n_classes = classes.shape[0]
    class_weight = estimator.class_weight
    if class_weight is not None:
        if class_weight == "balanced":
            w = None if sample_weight is None else sample_weight
            counts = _compute(client, da.bincount(codes, weights=w, minlength=n_classes), timeout)
            per_class = counts.sum() / (n_classes * np.maximum(counts, 1e-300))
        else:
            per_class = class_weight_vector(class_weight, classes, classes, None)
        per_class = np.asarray(per_class, dtype=X.dtype)
        weights = codes.map_blocks(functools.partial(_per_class, weights=per_class), dtype=X.dtype)
        sample_weight = weights if sample_weight is None else weights * sample_weight
    penalty = Penalty.from_params(estimator.penalty, estimator.l1_ratio)
    objective = DaskSoftmaxObjective(
        X,
        codes,
        n_classes,
        sample_weight,
        estimator.fit_intercept,
        estimator.C,
        penalty,
        client,
        timeout,
    )
    if not objective.weight_sum > 0:
        raise ValueError("class_weight and sample_weight leave every sample with weight 0.")
    return objective, classes, feature_names


def predict_lazy(estimator, X, kind: str):
    """Lazy ``predict`` / ``predict_proba`` / ``predict_log_proba`` / ``decision_function``
    on a Dask array or dataframe: a dask array computed block by block (``map_blocks``).

    Returns
    -------
    dask.array of shape (n,) for "predict" (and "decision_function" with two classes),
    (n, K) otherwise.
    """
    import dask.array as da
    import dask.dataframe as dd
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    if isinstance(X, dd.DataFrame):
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        raise TypeError(f"Expected a dask array or dataframe; got {type(X).__name__}.")
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[-1]} features, but SoftmaxRegression is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    coef, intercept = np.asarray(estimator.coef_), np.asarray(estimator.intercept_)
    K = coef.shape[0]
    dtype = np.result_type(X.dtype, coef.dtype)
    if kind == "predict":
        classes = estimator.classes_
        func = functools.partial(_label_block, coef=coef, intercept=intercept, classes=classes)
        return X.map_blocks(func, drop_axis=1, dtype=classes.dtype)
    func = {
        "predict_proba": _proba_block,
        "predict_log_proba": _log_proba_block,
        "decision_function": _scores_block,
    }[kind]
    out = X.map_blocks(
        functools.partial(func, coef=coef, intercept=intercept),
        chunks=(X.chunks[0], (K,)),
        dtype=dtype,
    )
    if kind == "decision_function" and K == 2:
        return out[:, 1] - out[:, 0]
    return out
