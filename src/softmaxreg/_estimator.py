"""``SoftmaxRegression``: validation, dispatch to a solver, fitted attributes.

The estimator does no arithmetic of its own: scores and probabilities come from ``_loss``, the
objective from ``_objective``, the minimisation from ``_solvers``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _loss
from ._objective import SoftmaxObjective
from ._penalties import Penalty
from ._publish import publishes_at_end
from ._solvers import SOLVERS, solve
from ._solvers._auto import choose_solver
from ._threads import fit_threads
from ._validation import (
    check_params,
    check_sample_weight,
    class_weight_vector,
    encode_labels,
)

# Without a penalty the scaled objective is the mean log-loss; on separable data it tends to 0
# while the coefficients diverge, and the gradient criterion alone cannot tell.
_SEPARATION_LOSS = 1e-4


def _backend(X) -> str | None:
    """"dask" for Dask collections, "array_api" for PyTorch / CuPy arrays, None otherwise.

    Decided from the type's module name, so NumPy input pays one attribute lookup and the
    optional libraries are never imported here.
    """
    root = type(X).__module__.split(".")[0]
    if root == "dask":
        return "dask"
    if root in ("torch", "cupy"):
        return "array_api"
    return None


def _not_converged_message(solver_name, n_iter, max_iter, gradient_norm, tol, dtype) -> str:
    """The ConvergenceWarning text, naming why the fit stopped short of its stopping rule.

    A solver that stops before ``max_iter`` found no step that lowers the objective at the
    data's precision (float32 features of size 1e4 leave the gradient near 1e-3), so more
    iterations would not help.
    """
    rule = "the stopping rule" if tol is None else f"tol = {tol:.1e}"
    summary = f"max|gradient| = {gradient_norm:.2e}, short of {rule}"
    if n_iter < max_iter:
        dtype = np.dtype(dtype)
        remedies = (
            "standardise the features, fit float64 data, or loosen tol"
            if dtype == np.float32
            else "standardise the features or loosen tol"
        )
        return (
            f"{solver_name} stopped after {n_iter} iterations ({summary}): no step lowers the "
            f"objective further in {dtype.name}; {remedies}."
        )
    return (
        f"{solver_name} did not converge in {n_iter} iterations ({summary}); "
        "increase max_iter, loosen tol, or add regularisation (smaller C)."
    )


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Softmax (multinomial logistic) regression.

    Minimises ``C * sum_i s_i * (-log P(y_i | x_i)) + R(W)`` with ``s_i`` the product of
    ``sample_weight`` and ``class_weight``, and ``R`` the penalty; the intercept is never
    penalised. At equal ``C`` and penalty this is scikit-learn's ``LogisticRegression``
    objective, so the coefficients agree to solver precision, for K >= 3 classes.

    With K = 2, scikit-learn fits one vector ``beta`` while this model keeps a row per class
    and penalises both; at the optimum ``coef_[0] = -coef_[1]`` and
    ``beta = coef_[1] - coef_[0]``, so the same ``C`` is not the same model. With mixing
    ``r = l1_ratio`` (0 for "l2", 1 for "l1"), ``SoftmaxRegression(C=C)`` equals
    ``LogisticRegression(C=2 * C / (1 + r), l1_ratio=2 * r / (1 + r))``: ``C' = 2 C`` for L2,
    ``C' = C`` for L1.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, > 0.
    penalty : {"l2", "l1", "elasticnet", "grouped"} or None, default="l2"
    l1_ratio : float in [0, 1] or None, default=None
        Mixing of the non-smooth part for "elasticnet" and "grouped".
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
        Per-class multipliers of the sample weights.
    solver : str, default="auto"
        "auto" picks by problem shape, sparsity and penalty (see ``_solvers._auto``); a name
        from ``SOLVERS`` forces that solver.
    tol : float or None, default=None
        The stopping rule's tolerance. Smooth solvers stop once their estimate of the
        remaining decrease of the objective (the Newton decrement ``g . H^{-1} g / 2``) is at
        most ``tol`` times the objective and take that last step; ``None`` means 1e-12,
        which ends at the optimum to rounding level (probabilities within 1e-6, objective
        within 1e-9 relative, in float64). For "prox-newton", ``tol`` bounds the scaled
        gradient's distance to the penalty's subdifferential (None: its default).
    max_iter : int, default=1000
    warm_start : bool, default=False
        Start from the previous fit's coefficients when the classes and features match.
    verbose : int, default=0
    random_state : int, RandomState or None, default=None
        Used by stochastic solvers only.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    coef_ : ndarray of shape (K, d)
    intercept_ : ndarray of shape (K,)
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (d,)
        Only with DataFrame input.
    solver_ : str
        The solver that ran (what "auto" chose).
    """

    def __init__(
        self,
        C=1.0,
        penalty="l2",
        l1_ratio=None,
        fit_intercept=True,
        class_weight=None,
        solver="auto",
        tol=None,
        max_iter=1000,
        warm_start=False,
        verbose=0,
        random_state=None,
    ):
        self.C = C
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------------ fitting
    def _validate_fit_data(self, X, y, sample_weight):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            order="C",
            reset=True,
        )
        classes, y_encoded = encode_labels(y, "SoftmaxRegression")
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return X, y, classes, y_encoded, sample_weight

    def _total_weight(self, y, classes, y_encoded, sample_weight, dtype):
        """``s_i = sample_weight_i * class_weight[y_i]`` or None when all are one."""
        if self.class_weight is None:
            return sample_weight
        per_class = class_weight_vector(self.class_weight, classes, y, sample_weight)
        total = per_class[y_encoded].astype(dtype)
        if sample_weight is not None:
            total *= sample_weight
        if not np.any(total > 0):
            raise ValueError("class_weight and sample_weight leave every sample with weight 0.")
        return total

    def _initial_params(self, objective, classes):
        """The previous fit's parameters under ``warm_start``, otherwise the objective's start."""
        if (
            self.warm_start
            and hasattr(self, "coef_")
            and np.array_equal(getattr(self, "classes_", None), classes)
            and self.coef_.shape == (len(classes), objective.shape[1] - self.fit_intercept)
        ):
            params = np.zeros(objective.shape, dtype=objective.dtype)
            coef, intercept = _loss.split_params(params, self.fit_intercept)
            coef[...] = self.coef_
            if intercept is not None:
                intercept[...] = self.intercept_
            return params
        return objective.initial_params()

    def _solver_name(self, objective, X):
        if self.solver != "auto":
            _, penalties = SOLVERS[self.solver]
            if self.penalty not in penalties:
                supported = sorted(name for name, (_, p) in SOLVERS.items() if self.penalty in p)
                raise ValueError(
                    f"solver={self.solver!r} does not support penalty={self.penalty!r}; "
                    f"solvers for it: {supported}."
                )
            return self.solver
        return choose_solver(X, objective.n_classes, self.penalty, self.fit_intercept)

    @publishes_at_end
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        check_params(self, SOLVERS)
        if _backend(X) == "dask":
            return self._fit_dask(X, y, sample_weight)
        if _backend(X) == "array_api":
            return self._fit_array_api(X, y, sample_weight)
        X, y, classes, y_encoded, sample_weight = self._validate_fit_data(X, y, sample_weight)
        total_weight = self._total_weight(y, classes, y_encoded, sample_weight, X.dtype)
        penalty = Penalty.from_params(self.penalty, self.l1_ratio)
        objective = SoftmaxObjective(
            X, y_encoded, len(classes), total_weight, self.fit_intercept, self.C, penalty
        )
        solver_name = self._solver_name(objective, X)
        # the start goes in as a temporary, so the solver can let it go (see _solvers)
        with fit_threads(X, len(classes)):
            result = solve(
                solver_name,
                objective,
                self._initial_params(objective, classes),
                tol=self.tol,
                max_iter=self.max_iter,
                verbose=self.verbose,
            )
        return self._store(result, classes, solver_name, X.dtype)

    def _fit_dask(self, X, y, sample_weight):
        """Fit on Dask input across the current ``distributed`` cluster (see ``_dask``)."""
        from ._dask import prepare_fit

        objective, classes, feature_names = prepare_fit(self, X, y, sample_weight)
        # newton-cg (Kronecker preconditioner) needs the fewest passes over the data, and
        # every pass is a round trip to the cluster
        solver_name = "newton-cg" if self.solver == "auto" else self._solver_name(objective, X)
        solve, penalties = SOLVERS[solver_name]
        if self.penalty not in penalties:
            raise ValueError(
                f"Dask input supports penalty='l2' or None; got penalty={self.penalty!r}."
            )
        self.n_features_in_ = objective.shape[1] - int(self.fit_intercept)
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        try:
            params0 = self._initial_params(objective, classes)
            objective.check_finite(params0)
            result = solve(
                objective, params0, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose
            )
        finally:
            objective.release()
        return self._store(result, classes, solver_name, objective.dtype)

    def _fit_array_api(self, X, y, sample_weight):
        """Fit on PyTorch / CuPy input on its device (see ``_array_api``)."""
        from ._array_api import prepare_fit, to_namespace

        objective, classes, y_in_namespace = prepare_fit(self, X, y, sample_weight)
        solver_name = self._solver_name(objective, objective.X)
        solve, _ = SOLVERS[solver_name]
        self.n_features_in_ = objective.shape[1] - int(self.fit_intercept)
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if self.warm_start and hasattr(self, "coef_"):  # back to NumPy for the solver
            self.coef_ = _loss.to_host(self.coef_)
            self.intercept_ = _loss.to_host(self.intercept_)
            self.classes_ = _loss.to_host(self.classes_)
        params0 = self._initial_params(objective, classes)
        result = solve(
            objective, params0, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose
        )
        self._store(result, classes, solver_name, objective.dtype)
        to_namespace(self, objective.X, classes_too=y_in_namespace)
        return self

    def _predict_backend(self, X, kind):
        """Predictions for Dask (lazy dask arrays) and array API input (same namespace)."""
        if _backend(X) == "dask":
            from ._dask import predict_lazy

            return predict_lazy(self, X, kind)
        from ._array_api import predict

        return predict(self, X, kind)

    @publishes_at_end
    def partial_fit(self, X, y, classes=None, sample_weight=None, n_samples_total=None):
        """One stochastic step (Adam) on a minibatch of the same softmax objective.

        Each call is one step of ``_solvers.adam`` on the minibatch objective
        ``F_b = (1 / S_b) sum_{i in b} s_i (-log P(y_i | x_i)) + R(W) / (C * N)``, an unbiased
        estimate of the scaled objective ``F`` of a data set of total weight ``N``.
        ``coef_`` and ``intercept_`` are the running average of the iterates. After ``fit``,
        ``partial_fit`` continues from the fitted coefficients, and ``fit`` with
        ``warm_start=True`` continues from the ``partial_fit`` model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_batch, n_features)
        y : array-like of shape (n_batch,)
        classes : array-like of shape (K,), default=None
            All the classes of the stream; needed on the first call unless the minibatch
            contains every class (or the model was fitted before).
        sample_weight : array-like of shape (n_batch,), default=None
        n_samples_total : float, default=None
            ``N``: the total weight of the data set the minibatches are drawn from (its number
            of samples for unit weights), which sets the strength of the ridge. None means a
            stream of new samples: ``N`` is the weight of all minibatches seen so far
            (``weight_seen_``), so passing the same data for E epochs weakens the ridge E-fold;
            give ``n_samples_total`` for epochs over a fixed data set.

        Returns
        -------
        self
        """
        from ._solvers.adam import adam_init, adam_step

        check_params(self, SOLVERS)
        if self.penalty not in ("l2", None):
            raise ValueError(
                f"partial_fit supports penalty='l2' or None; got penalty={self.penalty!r}."
            )
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs the whole data set; partial_fit supports a "
                "dict or None."
            )
        fitted = hasattr(self, "coef_")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            order="C",
            reset=not fitted,
        )
        check_classification_targets(y)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if fitted and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()} differ from the classes of the earlier fit "
                    f"{self.classes_.tolist()}."
                )
        elif fitted:
            classes = self.classes_
        else:
            classes = np.unique(y)
        if classes.shape[0] < 2:
            raise ValueError(
                "partial_fit needs at least 2 classes; pass classes= on the first call when a "
                "minibatch holds only one."
            )
        y_encoded = np.searchsorted(classes, y)
        y_encoded[y_encoded == len(classes)] = 0
        unknown = classes[y_encoded] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} that are not among "
                f"classes {classes.tolist()}."
            )
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        total_weight = self._total_weight(y, classes, y_encoded, sample_weight, X.dtype)
        batch_weight = float(X.shape[0] if total_weight is None else total_weight.sum())
        if batch_weight <= 0:
            raise ValueError("The minibatch has total weight 0.")
        weight_seen = getattr(self, "weight_seen_", 0.0) + batch_weight
        if n_samples_total is None:
            n_total = weight_seen
        elif not np.isfinite(n_samples_total) or n_samples_total <= 0:
            raise ValueError(f"n_samples_total must be > 0; got {n_samples_total!r}.")
        else:
            n_total = float(n_samples_total)
        # F_b's ridge is R / (C * N): a SoftmaxObjective on the batch with C * N / S_b
        objective = SoftmaxObjective(
            X,
            y_encoded.astype(np.intp),
            len(classes),
            total_weight,
            self.fit_intercept,
            self.C * n_total / batch_weight,
            Penalty.from_params(self.penalty, self.l1_ratio),
        )
        state = getattr(self, "partial_fit_state_", None)
        if fitted:
            params = np.zeros(objective.shape)
            coef, intercept = _loss.split_params(params, self.fit_intercept)
            coef[...] = self.coef_
            if intercept is not None:
                intercept[...] = self.intercept_
            if state is None or not np.allclose(state.average, params, rtol=1e-5, atol=1e-6):
                state = adam_init(params)  # restart from a model that fit (not we) produced
        else:
            # not objective.initial_params(): a minibatch may lack classes, whose log
            # frequency would be -27
            state = adam_init(np.zeros(objective.shape))
        state, value = adam_step(objective, state)
        params = state.average.astype(X.dtype)
        coef, intercept = _loss.split_params(params, self.fit_intercept)
        self.classes_ = classes
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = (
            np.array(intercept) if intercept is not None else np.zeros(len(classes), X.dtype)
        )
        self.partial_fit_state_ = state
        self.weight_seen_ = weight_seen
        self.n_iter_ = state.n_steps
        self.converged_ = False  # a stochastic solver has no convergence test
        self.solver_ = "adam"
        return self

    def _store(self, result, classes, solver_name, dtype):
        if not np.all(np.isfinite(result.params)):
            raise ValueError(
                "The solver produced non-finite coefficients; the data may be degenerate "
                "(try a smaller C or standardising the features)."
            )
        params = result.params.astype(dtype, copy=False)
        coef, intercept = _loss.split_params(params, self.fit_intercept)
        self.classes_ = classes
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = (
            np.array(intercept) if intercept is not None else np.zeros(len(classes), dtype=dtype)
        )
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.solver_ = solver_name
        if self.penalty is None and result.objective < _SEPARATION_LOSS:
            warnings.warn(
                f"The mean training log-loss is {result.objective:.1e}: the classes look "
                "perfectly separated, so the unpenalised maximum-likelihood estimate does not "
                "exist and the finite coefficients returned grow without bound as tol "
                "shrinks. Use penalty='l2' for meaningful coefficients.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if not self.converged_:
            message = _not_converged_message(
                solver_name, self.n_iter_, self.max_iter, result.gradient_norm, self.tol, dtype
            )
            warnings.warn(message, ConvergenceWarning, stacklevel=4)
        return self

    # ------------------------------------------------------------------ prediction
    def _scores(self, X, shifted=False):
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False
        )
        # rows that overflow are recomputed: no NaN probabilities for finite X (see _loss)
        return _loss.prediction_scores(X, self.coef_, self.intercept_, shifted=shifted)

    def decision_function(self, X):
        """Linear scores.

        Returns
        -------
        ndarray of shape (n_samples, K), or (n_samples,) for two classes (the score of
        ``classes_[1]`` minus that of ``classes_[0]``, scikit-learn's binary convention).
        """
        if _backend(X) is not None:
            return self._predict_backend(X, "decision_function")
        scores = self._scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_proba(self, X):
        """Class probabilities, ndarray of shape (n_samples, K); rows sum to 1."""
        if _backend(X) is not None:
            return self._predict_backend(X, "predict_proba")
        return _loss.softmax(self._scores(X, shifted=True))

    def predict_log_proba(self, X):
        """Log of the class probabilities, ndarray of shape (n_samples, K), max-shifted."""
        if _backend(X) is not None:
            return self._predict_backend(X, "predict_log_proba")
        return _loss.log_softmax(self._scores(X, shifted=True))

    def predict(self, X):
        """Most probable class, ndarray of shape (n_samples,)."""
        if _backend(X) is not None:
            return self._predict_backend(X, "predict")
        scores = self._scores(X, shifted=True)  # checks that the model is fitted first
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------------ delegations
    # Each capability lives in its own module; the estimator only forwards to it.
    def inference(self, X, y, sample_weight=None, reference=None, robust=False, cov_type=None,
                  groups=None):
        """Standard errors, z-values, p-values and a summary in reference-class form.

        See :func:`softmaxreg.inference.compute_inference`.
        """
        from ._optional import require

        require("pandas", "the inference summary", extra="inference")
        from .inference import compute_inference

        return compute_inference(
            self, X, y, sample_weight=sample_weight, reference=reference, robust=robust,
            cov_type=cov_type, groups=groups,
        )

    @classmethod
    def from_formula(cls, formula: str, data, sample_weight=None, **params):
        """Fit on a model formula such as ``"PID ~ age + C(educ)"`` (formulaic).

        See :func:`softmaxreg.formula.fit`; ``params`` are the estimator's (``penalty=None``
        unless given).
        """
        from .formula import fit

        return fit(formula, data, sample_weight=sample_weight, **params)

    def save(self, path) -> None:
        """Write the fitted model to one self-describing file (no pickle).

        See :func:`softmaxreg._io.save_model`; read it back with :func:`softmaxreg.load`.
        """
        from ._io import save_model

        save_model(self, path)

    def to_onnx(self, **kwargs):
        """Export as an ``onnx.ModelProto`` (label and probability outputs).

        See :func:`softmaxreg._io.to_onnx`.
        """
        from ._io import to_onnx

        return to_onnx(self, **kwargs)


def _scorer_with_labels(scorer, classes):
    """``scorer`` told every class label where its metric takes ``labels``: a held-out fold
    may lack a class, and log loss or the Brier score would then count the model's columns
    wrongly (or refuse), as scikit-learn's ``LogisticRegressionCV`` also handles."""
    import inspect

    from sklearn.metrics import make_scorer

    score_func = getattr(scorer, "_score_func", None)
    if score_func is None or "labels" not in inspect.signature(score_func).parameters:
        return scorer
    kwargs = {**getattr(scorer, "_kwargs", {}), "labels": classes}
    if len(classes) == 2 and "pos_label" in inspect.signature(score_func).parameters:
        kwargs.setdefault("pos_label", classes[-1])
    return make_scorer(
        score_func,
        greater_is_better=scorer._sign == 1,
        response_method=scorer._response_method,
        **kwargs,
    )


class SoftmaxRegressionCV(ClassifierMixin, BaseEstimator):
    """Softmax regression with ``C`` (and ``l1_ratio``) chosen by cross-validation.

    On every training fold the regularisation path over ``Cs`` is solved from strong to weak
    regularisation with warm starts (glmnet-style, see :func:`softmaxreg.regularization_path`),
    each solution is scored on the held-out fold, and the best mean score picks ``C_`` (and
    ``l1_ratio_``). With ``refit=True`` the model is then refitted on all the data at that
    point, warm-started from the mean of the fold solutions there; the fitted attributes and
    the prediction methods are those of :class:`SoftmaxRegression`. Usable like
    scikit-learn's ``LogisticRegressionCV`` with ``use_legacy_attributes=False``.

    Parameters
    ----------
    Cs : int or array-like of shape (n_Cs,), default=10
        An int ``n`` means ``np.logspace(-4, 4, n)``; the grid is sorted ascending.
    l1_ratios : array-like of shape (n_l1_ratios,) or None, default=None
        Grid of ``l1_ratio`` for "elasticnet" and "grouped" (required there); must be None
        for the other penalties.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn; an int means ``StratifiedKFold(cv)`` (no shuffling).
    scoring : str, callable or None, default=None
        A scikit-learn scorer; None means accuracy (``score``). Held-out sample weights are
        passed to it when ``sample_weight`` is given.
    penalty : {"l2", "l1", "elasticnet", "grouped"} or None, default="l2"
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
        Computed once on the whole training data, as in ``LogisticRegressionCV``.
    solver : str, default="auto"
    tol : float or None, default=None
        As in ``SoftmaxRegression`` (at every point of every path).
    max_iter : int, default=1000
        Solver iterations allowed at every point of every path.
    refit : bool, default=True
        If False, the coefficients are the mean over folds of each fold's best solution, and
        ``C_`` / ``l1_ratio_`` the mean of those folds' best values (as scikit-learn); with
        ``selection="1se"`` the mean over folds at the one chosen grid point.
    verbose : int, default=0
    random_state : None
        Accepted for scikit-learn compatibility; the solvers are deterministic.
    selection : {"min", "1se"}, default="min"
        "min": the grid point of the best mean score. "1se": glmnet's ``lambda.1se``, the
        smallest ``C`` (at the best point's ``l1_ratio``) whose mean score is within one
        standard error of the best one (the standard error of the mean over folds,
        ``std(ddof=1) / sqrt(n_folds)``).
    relax : bool or float, default=False
        glmnet's ``relax``: every solution of the path is refitted on its support (the
        features with a nonzero coefficient for some class), without a penalty (``True``)
        or with an L2 penalty at ``C = relax`` (a positive float); the refits are scored
        and chosen from, and the final model is the refit on the support of the penalised
        fit at ``C_``.
    n_jobs : int or None, default=None
        Folds fitted in parallel with joblib (None: one job, unless in a
        ``joblib.parallel_config`` context; -1: all processors).

    Attributes
    ----------
    C_ : float
        The chosen ``C``.
    l1_ratio_ : float or None
        The chosen ``l1_ratio`` ("elasticnet" and "grouped"), otherwise None.
    Cs_ : ndarray of shape (n_Cs,)
    l1_ratios_ : ndarray of shape (n_l1_ratios,) or None
    scores_ : ndarray of shape (n_folds, n_l1_ratios, n_Cs)
        Held-out score of every fold and grid point (``n_l1_ratios`` is 1 without a grid
        of ``l1_ratio``), scikit-learn's non-legacy layout; with ``relax``, of the refits.
    coefs_paths_ : ndarray of shape (n_folds, n_l1_ratios, n_Cs, K, d + fit_intercept)
        Every fold's path, the intercept in the last column when fitted (with ``relax``,
        the refits). A class missing from a training fold gets zero coefficients and an
        intercept of ``-inf`` there.
    converged_paths_ : ndarray of shape (n_folds, n_l1_ratios, n_Cs)
        Whether every fit (and refit) of the folds' paths converged.
    n_iter_ : ndarray of shape (n_folds, n_l1_ratios, n_Cs)
        Solver iterations of every fit; a fit whose start already met the optimality
        conditions (all coefficients zero at a small ``C``) counts the check as 1.
    classes_ : ndarray of shape (K,)
    coef_ : ndarray of shape (K, d)
    intercept_ : ndarray of shape (K,)
    converged_ : bool
        Whether the final fit converged (with ``refit=True``).
    solver_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (d,)
        Only with DataFrame input.
    """

    def __init__(
        self,
        Cs=10,
        l1_ratios=None,
        cv=5,
        scoring=None,
        penalty="l2",
        fit_intercept=True,
        class_weight=None,
        solver="auto",
        tol=None,
        max_iter=1000,
        refit=True,
        verbose=0,
        random_state=None,
        selection="min",
        relax=False,
        n_jobs=None,
    ):
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.cv = cv
        self.scoring = scoring
        self.penalty = penalty
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.refit = refit
        self.verbose = verbose
        self.random_state = random_state
        self.selection = selection
        self.relax = relax
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _model(self, l1_ratio, C=1.0):
        """An unfitted ``SoftmaxRegression`` with these settings (validation and scoring)."""
        return SoftmaxRegression(
            C=C,
            penalty=self.penalty,
            l1_ratio=l1_ratio,
            fit_intercept=self.fit_intercept,
            class_weight=self.class_weight,
            solver=self.solver,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=self.verbose,
        )

    def _check_grid(self):
        """Validated ``(l1_ratios or None, Cs)``; parameter errors are ``SoftmaxRegression``'s."""
        from ._path import check_Cs

        mixing = self.penalty in ("elasticnet", "grouped")
        if mixing:
            if self.l1_ratios is None:
                raise ValueError(
                    f"penalty={self.penalty!r} needs l1_ratios, a list of floats in [0, 1]; "
                    "got l1_ratios=None."
                )
            ratios = np.atleast_1d(np.asarray(self.l1_ratios, dtype=object))
            if ratios.ndim != 1 or ratios.size == 0:
                raise ValueError(f"l1_ratios must be a non-empty list; got {self.l1_ratios!r}.")
        elif self.l1_ratios is not None:
            raise ValueError(
                f"l1_ratios is only used with penalty='elasticnet' or 'grouped'; got "
                f"penalty={self.penalty!r} with l1_ratios={self.l1_ratios!r}."
            )
        else:
            ratios = [None]
        for ratio in ratios:
            check_params(self._model(ratio), SOLVERS)
        if self.solver != "auto" and self.penalty not in SOLVERS[self.solver][1]:
            supported = sorted(name for name, (_, p) in SOLVERS.items() if self.penalty in p)
            raise ValueError(
                f"solver={self.solver!r} does not support penalty={self.penalty!r}; solvers "
                f"for it: {supported}."
            )
        if not isinstance(self.refit, bool | np.bool_):
            raise TypeError(f"refit must be a bool; got {type(self.refit).__name__}.")
        if self.selection not in ("min", "1se"):
            raise ValueError(f"selection must be 'min' or '1se'; got {self.selection!r}.")
        from ._path import check_relax

        check_relax(self.relax)
        if mixing:
            return np.array([float(ratio) for ratio in ratios]), check_Cs(self.Cs)
        return None, check_Cs(self.Cs)

    def _fold_path(self, X, y_encoded, n_classes, weights, Cs, penalty):
        """The path on one training fold: params [n_Cs, K, p] for all ``n_classes`` classes,
        iterations and convergence [n_Cs], and the classes absent from the fold [K].

        A class absent from the fold cannot be fitted (its intercept would run to -inf): the
        path is fitted on the classes present and the absent ones get zero coefficients and
        an intercept of ``-inf``, i.e. probability 0. With ``relax`` the params are the
        refits on the supports.
        """
        from ._path import check_relax, relaxed_path, solve_path

        relax = check_relax(self.relax)

        def path(codes, n_present):
            params, n_iter, converged, _ = solve_path(
                X, codes, n_present, weights, self.fit_intercept, Cs, penalty,
                self.solver, self.tol, self.max_iter, self.verbose,
            )
            if relax is not False:
                params, relaxed_converged = relaxed_path(
                    X, codes, n_present, weights, self.fit_intercept, params, relax,
                    self.tol, self.max_iter, self.verbose,
                )
                converged = converged & relaxed_converged
            return params, n_iter, converged

        present = np.unique(y_encoded)
        p = X.shape[1] + int(self.fit_intercept)
        absent = np.ones(n_classes, dtype=bool)
        absent[present] = False
        if len(present) == n_classes:
            params, n_iter, converged = path(y_encoded, n_classes)
            return params, n_iter, converged, absent
        params = np.zeros((len(Cs), n_classes, p), dtype=X.dtype)
        n_iter = np.zeros(len(Cs), dtype=int)
        converged = np.ones(len(Cs), dtype=bool)
        if len(present) >= 2:
            fitted, n_iter, converged = path(np.searchsorted(present, y_encoded), len(present))
            params[:, present] = fitted
        # Without an intercept column the -inf lives in the scoring model only.
        if self.fit_intercept:
            params[:, absent, -1] = -np.inf
        return params, n_iter, converged, absent

    def _path_coefs(self, params, n_features, absent):
        """``(coefs [n_Cs, K, d], intercepts [n_Cs, K])`` of a fold's path ``params``, the
        intercept of a class absent from the fold at ``-inf`` also without a fitted one."""
        coefs = params[:, :, :n_features]
        if self.fit_intercept:
            return coefs, params[:, :, n_features]
        intercepts = np.zeros(params.shape[:2], dtype=params.dtype)
        intercepts[:, absent] = -np.inf
        return coefs, intercepts

    def _fitted_model(self, classes, params, n_features, l1_ratio, C, absent):
        """A fitted ``SoftmaxRegression`` holding ``params`` [K, p], to score a fold."""
        model = self._model(l1_ratio, C)
        model.classes_ = classes
        model.coef_ = np.ascontiguousarray(params[:, :n_features])
        if self.fit_intercept:
            model.intercept_ = np.array(params[:, n_features])
        else:
            model.intercept_ = np.zeros(len(classes), dtype=params.dtype)
            model.intercept_[absent] = -np.inf
        model.n_features_in_ = n_features
        model.n_iter_ = 0
        model.converged_ = True
        model.solver_ = self.solver
        return model

    @publishes_at_end
    def fit(self, X, y, sample_weight=None):
        """Cross-validate the path, choose ``C_`` (and ``l1_ratio_``), refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Used in every fit and passed to the scorer on the held-out folds.

        Returns
        -------
        self
        """
        from joblib import Parallel, delayed
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import check_cv

        ratios, Cs = self._check_grid()
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32], order="C",
            reset=True,
        )
        classes, y_encoded = encode_labels(y, "SoftmaxRegressionCV")
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        weights = sample_weight
        if self.class_weight is not None:
            per_class = class_weight_vector(self.class_weight, classes, y, sample_weight)
            weights = per_class[y_encoded].astype(X.dtype)
            if sample_weight is not None:
                weights = weights * sample_weight
            if not np.any(weights > 0):
                raise ValueError(
                    "class_weight and sample_weight leave every sample with weight 0."
                )
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        scorer = _scorer_with_labels(
            check_scoring(self._model(None if ratios is None else ratios[0]), self.scoring),
            classes,
        )
        K, d = len(classes), X.shape[1]
        ratio_grid = [None] if ratios is None else list(ratios)
        for f, (train, _) in enumerate(folds):
            if weights is not None and not np.any(weights[train] > 0):
                raise ValueError(f"Every sample of training fold {f} has weight 0.")
        # Processes (joblib's default backend): the path's Python-level loops hold the GIL.
        fold_results = Parallel(n_jobs=self.n_jobs)(
            delayed(self._fold)(
                X, y, y_encoded, classes, weights, sample_weight, train, test, Cs,
                ratio_grid, scorer,
            )
            for train, test in folds
        )
        paths, n_iter, converged, scores = (
            np.stack(part) for part in zip(*fold_results, strict=True)
        )
        self.Cs_ = Cs
        self.l1_ratios_ = ratios
        self.scores_ = scores
        self.coefs_paths_ = paths
        self.n_iter_ = n_iter
        self.converged_paths_ = converged
        self.classes_ = classes
        not_converged = Cs[np.any(~converged, axis=(0, 1))]
        r, c = self._select(scores)
        if self.refit:
            self.C_ = float(Cs[c])
            self.l1_ratio_ = None if ratios is None else float(ratios[r])
            final, final_converged, self.solver_ = self._refit(
                X, y_encoded, K, weights, Cs[c : c + 1], paths[:, r, c]
            )
            self.converged_ = final_converged
            if not final_converged:
                not_converged = np.union1d(not_converged, Cs[c : c + 1])
        else:
            if self.selection == "min":
                best = [np.unravel_index(np.argmax(fold), fold.shape) for fold in scores]
            else:
                best = [(r, c)] * len(folds)
            final = np.mean([paths[f, r, c] for f, (r, c) in enumerate(best)], axis=0)
            if not np.all(np.isfinite(final)):
                raise ValueError(
                    "refit=False averages the folds' coefficients, which needs every class in "
                    "every training fold; use refit=True or fewer folds."
                )
            self.C_ = float(np.mean([Cs[c] for _, c in best]))
            self.l1_ratio_ = (
                None if ratios is None else float(np.mean([ratios[r] for r, _ in best]))
            )
            self.converged_ = bool(converged.all())
            self.solver_ = self.solver
        final = final.astype(X.dtype, copy=False)
        self.coef_ = np.ascontiguousarray(final[:, :d])
        self.intercept_ = (
            np.array(final[:, d]) if self.fit_intercept else np.zeros(K, dtype=X.dtype)
        )
        if len(not_converged):
            warnings.warn(
                "Some fits of the cross-validated path did not converge at C = "
                f"[{', '.join(f'{C:.6g}' for C in not_converged)}]; increase max_iter, "
                "loosen tol, or leave out the largest Cs.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _fold(self, X, y, y_encoded, classes, weights, sample_weight, train, test, Cs,
              ratio_grid, scorer):
        """One fold's paths [n_l1_ratios, n_Cs, K, p], iterations, convergence and scores
        [n_l1_ratios, n_Cs] (joblib's unit of work)."""
        from ._path import path_accuracy

        K, d = len(classes), X.shape[1]
        shape = (len(ratio_grid), len(Cs))
        paths = np.empty(shape + (K, d + int(self.fit_intercept)), dtype=X.dtype)
        n_iter = np.zeros(shape, dtype=int)
        converged = np.zeros(shape, dtype=bool)
        scores = np.empty(shape)
        w_train = None if weights is None else weights[train]
        w_test = None if sample_weight is None else sample_weight[test]
        X_train, X_test = X[train], X[test]
        for r, ratio in enumerate(ratio_grid):
            penalty = Penalty.from_params(self.penalty, ratio)
            params, iters, converged[r], absent = self._fold_path(
                X_train, y_encoded[train], K, w_train, Cs, penalty
            )
            paths[r], n_iter[r] = params, np.maximum(iters, 1)
            if self.scoring is None:  # accuracy, what the models' ``score`` gives
                scores[r] = path_accuracy(
                    *self._path_coefs(params, d, absent), X_test, y_encoded[test], w_test
                )
                continue
            for c, C in enumerate(Cs):
                model = self._fitted_model(classes, params[c], d, ratio, C, absent)
                if w_test is None:
                    scores[r, c] = scorer(model, X_test, y[test])
                else:
                    scores[r, c] = scorer(model, X_test, y[test], sample_weight=w_test)
        return paths, n_iter, converged, scores

    def _select(self, scores):
        """The chosen grid point ``(r, c)`` from ``scores`` [n_folds, n_l1_ratios, n_Cs].

        "min": the first best mean score in (l1_ratio, C) order, so ties go to the strongest
        regularisation. "1se": from there, the smallest ``C`` at that ``l1_ratio`` whose mean
        is at least the best mean less its standard error over folds.
        """
        mean = scores.mean(axis=0)
        r, c = np.unravel_index(np.argmax(mean), mean.shape)
        if self.selection == "1se" and len(scores) > 1:
            standard_error = scores[:, r, c].std(ddof=1) / np.sqrt(len(scores))
            c = int(np.flatnonzero(mean[r] >= mean[r, c] - standard_error)[0])
        return int(r), int(c)

    def _refit(self, X, y_encoded, n_classes, weights, C, fold_solutions):
        """The final fit at ``C`` (an array of one) on all the data, from the mean of the
        folds' solutions; with ``relax`` the refit on its support. Returns the params [K, p],
        whether it converged, and the solver's name."""
        from ._path import check_relax, relaxed_path, solve_path

        relax = check_relax(self.relax)
        start = fold_solutions.mean(axis=0) if np.all(np.isfinite(fold_solutions)) else None
        if relax is not False:
            start = None  # the folds hold refits, not penalised solutions
        penalty = Penalty.from_params(self.penalty, self.l1_ratio_)
        params, _, converged, solver_name = solve_path(
            X, y_encoded, n_classes, weights, self.fit_intercept, C, penalty, self.solver,
            self.tol, self.max_iter, self.verbose, params0=start,
        )
        if relax is not False:
            params, relaxed_converged = relaxed_path(
                X, y_encoded, n_classes, weights, self.fit_intercept, params, relax,
                self.tol, self.max_iter, self.verbose,
            )
            converged = converged & relaxed_converged
        return params[0], bool(converged[0]), solver_name

    # ------------------------------------------------------------------ prediction
    def _scores(self, X, shifted=False):
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False
        )
        # rows that overflow are recomputed: no NaN probabilities for finite X (see _loss)
        return _loss.prediction_scores(X, self.coef_, self.intercept_, shifted=shifted)

    def decision_function(self, X):
        """Linear scores, ndarray of shape (n_samples, K) ((n_samples,) for two classes)."""
        scores = self._scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_proba(self, X):
        """Class probabilities, ndarray of shape (n_samples, K); rows sum to 1."""
        return _loss.softmax(self._scores(X, shifted=True))

    def predict_log_proba(self, X):
        """Log of the class probabilities, ndarray of shape (n_samples, K)."""
        return _loss.log_softmax(self._scores(X, shifted=True))

    def predict(self, X):
        """Most probable class, ndarray of shape (n_samples,)."""
        scores = self._scores(X, shifted=True)  # checks that the model is fitted first
        return self.classes_[np.argmax(scores, axis=1)]
