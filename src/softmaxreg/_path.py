"""The regularisation path: solutions along a grid of ``C`` with warm starts (glmnet-style).

The grid runs from strong regularisation (small ``C``) to weak: each solution starts the next
fit, so along an L1 path the working sets of ``prox-newton`` start from the previous support
and the Newton iterations start close to the answer. ``SoftmaxRegressionCV`` runs this path on
every training fold.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_X_y

from . import _loss
from ._objective import SoftmaxObjective
from ._penalties import Penalty
from ._solvers import SOLVERS
from ._solvers._auto import choose_solver
from ._threads import fit_threads
from ._validation import check_params, check_sample_weight, class_weight_vector, encode_labels

__all__ = ["RegularizationPath", "regularization_path"]


@dataclass(frozen=True)
class RegularizationPath:
    """Solutions of the softmax regression along a grid of ``C``.

    Attributes
    ----------
    Cs : ndarray of shape (n_Cs,)
        The grid, ascending (strongest regularisation first).
    coefs : ndarray of shape (n_Cs, K, d)
        ``coef_`` at every ``C``.
    intercepts : ndarray of shape (n_Cs, K)
        ``intercept_`` at every ``C`` (zeros without an intercept).
    n_iter : ndarray of shape (n_Cs,)
        Solver iterations at every ``C``.
    converged : ndarray of shape (n_Cs,)
        Whether the solver reached ``tol`` at every ``C``.
    classes : ndarray of shape (K,)
    penalty : str or None
    l1_ratio : float or None
    solver : str
        The solver that ran (what "auto" chose).
    """

    Cs: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    classes: np.ndarray
    penalty: str | None
    l1_ratio: float | None
    solver: str

    @property
    def n_nonzero(self) -> np.ndarray:
        """Number of nonzero coefficients at every ``C``, ndarray of shape (n_Cs,)."""
        return np.count_nonzero(self.coefs, axis=(1, 2))

    @property
    def n_active_features(self) -> np.ndarray:
        """Number of features with a nonzero coefficient for some class, shape (n_Cs,)."""
        return np.count_nonzero(np.any(self.coefs != 0, axis=1), axis=1)


def check_Cs(Cs) -> np.ndarray:
    """The grid for ``Cs``: an int ``n`` means ``np.logspace(-4, 4, n)`` (scikit-learn's
    ``LogisticRegressionCV``); an array-like is taken as given. Returned sorted ascending.

    Raises
    ------
    ValueError
        For an int below 1, or values that are not positive finite numbers.
    """
    if isinstance(Cs, numbers.Integral) and not isinstance(Cs, bool):
        if Cs < 1:
            raise ValueError(f"Cs must be an int >= 1 or an array of positive floats; got {Cs}.")
        return np.logspace(-4, 4, int(Cs))
    try:
        grid = np.asarray(Cs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Cs must be an int >= 1 or an array of positive floats; got {Cs!r}."
        ) from None
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"Cs must be a non-empty 1-D array of positive floats; got {Cs!r}.")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"Every C in Cs must be a positive finite number; got {Cs!r}.")
    return np.sort(grid)


# Degree of the polynomial in log C, through the last solutions of the path, whose value at
# the next C starts the next fit (a predictor, as in continuation methods). Measured on the
# digits folds (1,437 x 64, K=10; Cs = logspace(-2, 2, 9), L2, tol 1e-5, one thread):
# Newton iterations per path 28 (previous solution) -> 19 (degree 1) -> 18 (degree 2), time
# 157 -> 88 -> 58 ms; degree 3 gained nothing more.
PREDICTOR_DEGREE = 2


def predicted_start(solutions, log_Cs, log_C, degree: int = PREDICTOR_DEGREE) -> np.ndarray:
    """Extrapolate the path to ``log_C`` through its last ``degree + 1`` solutions.

    Parameters
    ----------
    solutions : sequence of ndarray of shape (K, p)
        The solutions so far, in the order of ``log_Cs``.
    log_Cs : ndarray of shape (len(solutions),)
        ``log C`` of each solution (distinct).
    log_C : float
        Where to extrapolate to.
    degree : int

    Returns
    -------
    ndarray of shape (K, p)
        The Lagrange polynomial through the last ``min(degree + 1, len(solutions))``
        solutions, evaluated at ``log_C``. Coefficients that are zero in all of them stay
        exactly zero (an L1 path keeps its support).
    """
    m = min(degree + 1, len(solutions))
    nodes = np.asarray(log_Cs[-m:], dtype=np.float64)
    guess = np.zeros_like(solutions[-1])
    for a in range(m):
        others = np.delete(nodes, a)
        basis = float(np.prod((log_C - others) / (nodes[a] - others)))
        guess += basis * solutions[len(solutions) - m + a]
    return guess


def path_accuracy(coefs, intercepts, X, y_encoded, sample_weight=None) -> np.ndarray:
    """Accuracy of every solution of a path on held-out data.

    What ``SoftmaxRegression.score`` (scikit-learn's ``accuracy_score`` of ``predict``)
    gives for each solution, without building a model and validating the data per ``C``.

    Parameters
    ----------
    coefs : ndarray of shape (n_Cs, K, d)
    intercepts : ndarray of shape (n_Cs, K)
        ``-inf`` for a class that cannot be predicted.
    X : ndarray or CSR matrix of shape (n, d)
    y_encoded : ndarray of shape (n,)
        True class codes ``0..K-1``.
    sample_weight : ndarray of shape (n,) or None

    Returns
    -------
    ndarray of shape (n_Cs,)
        The (weighted) fraction of rows whose most probable class is the true one.
    """
    accuracy = np.empty(len(coefs))
    for c, (coef, intercept) in enumerate(zip(coefs, intercepts, strict=True)):
        predicted = np.argmax(_loss.linear_scores(X, coef, intercept), axis=1)
        accuracy[c] = np.average(predicted == y_encoded, weights=sample_weight)
    return accuracy


def solve_path(
    X,
    y_encoded: np.ndarray,
    n_classes: int,
    weights: np.ndarray | None,
    fit_intercept: bool,
    Cs: np.ndarray,
    penalty: Penalty,
    solver: str,
    tol: float,
    max_iter: int,
    verbose: int = 0,
    params0: np.ndarray | None = None,
):
    """Fit every ``C`` of an ascending grid, each from the previous solution.

    Inputs are already validated (this is the shared core of ``regularization_path`` and of
    ``SoftmaxRegressionCV``'s folds).

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y_encoded : ndarray of shape (n,), codes ``0..n_classes-1``
    n_classes : int
    weights : ndarray of shape (n,) or None
        Total sample weights ``s_i``.
    fit_intercept : bool
    Cs : ndarray of shape (n_Cs,), ascending
    penalty : Penalty
    solver : str
        "auto" or a key of ``SOLVERS``.
    tol, max_iter, verbose
        Passed to the solver at every ``C``.
    params0 : ndarray of shape (K, p) or None
        Start of the first fit; None means the objective's own start.

    Returns
    -------
    params : ndarray of shape (n_Cs, K, p)
    n_iter : ndarray of shape (n_Cs,)
    converged : ndarray of shape (n_Cs,)
    solver_name : str
    """
    name = solver
    if solver == "auto":
        name = choose_solver(X, n_classes, penalty.name, fit_intercept)
    solve, _ = SOLVERS[name]
    params = params0
    path, n_iter, converged = [], [], []
    log_Cs = np.log(Cs)
    objective = SoftmaxObjective(X, y_encoded, n_classes, weights, fit_intercept, Cs[0], penalty)
    result = None
    with fit_threads(X, n_classes):  # BLAS threads for the whole path (see _threads)
        for i, C in enumerate(Cs):
            previous, objective = objective, objective.with_C(C)  # shares the data caches
            if params is None:
                start = objective.initial_params()
            else:
                start = params
                if i >= 2:
                    guess = predicted_start(path, log_Cs[:i], log_Cs[i])
                    # F at the new C of the last solution, without a data pass: its data part
                    # is the last fit's F less that fit's penalty
                    kept = result.objective - previous.penalty_value(params)
                    if objective.value(guess) < kept + objective.penalty_value(params):
                        start = guess
            result = solve(objective, start, tol=tol, max_iter=max_iter, verbose=verbose)
            if not np.all(np.isfinite(result.params)):
                raise ValueError(
                    f"The solver produced non-finite coefficients at C={C:g}; the data may be "
                    "degenerate (try smaller Cs or standardising the features)."
                )
            params = result.params
            path.append(params)
            n_iter.append(result.n_iter)
            converged.append(result.converged)
    return np.stack(path), np.array(n_iter), np.array(converged), name


def regularization_path(
    X,
    y,
    Cs=10,
    penalty: str | None = "l1",
    l1_ratio: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    class_weight=None,
    tol: float = 1e-6,
    max_iter: int = 1000,
    solver: str = "auto",
    verbose: int = 0,
) -> RegularizationPath:
    """Softmax regression solutions along a grid of ``C``, with warm starts.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        CSR input stays sparse.
    y : array-like of shape (n_samples,)
    Cs : int or array-like of shape (n_Cs,), default=10
        An int ``n`` means ``np.logspace(-4, 4, n)``, as in scikit-learn's
        ``LogisticRegressionCV``. The grid is solved in ascending order (strongest
        regularisation first) and returned sorted.
    penalty : {"l1", "elasticnet", "grouped", "l2"} or None, default="l1"
    l1_ratio : float in [0, 1] or None
        Required for "elasticnet" and "grouped".
    sample_weight : array-like of shape (n_samples,), default=None
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
    tol : float, default=1e-6
        Solver tolerance at every ``C`` (same meaning as in ``SoftmaxRegression``).
    max_iter : int, default=1000
        Solver iterations allowed at every ``C``.
    solver : str, default="auto"
    verbose : int, default=0

    Returns
    -------
    RegularizationPath
        ``Cs`` [n_Cs], ``coefs`` [n_Cs, K, d], ``intercepts`` [n_Cs, K], ``n_iter`` and
        ``converged`` [n_Cs], ``classes`` [K].

    Raises
    ------
    ValueError
        For bad parameters or data (as ``SoftmaxRegression.fit``), or a bad ``Cs``.
    """
    from ._estimator import SoftmaxRegression  # the same parameter checks as the estimator

    check_params(
        SoftmaxRegression(
            penalty=penalty,
            l1_ratio=l1_ratio,
            fit_intercept=fit_intercept,
            class_weight=class_weight,
            solver=solver,
            tol=tol,
            max_iter=max_iter,
        ),
        SOLVERS,
    )
    if solver != "auto" and penalty not in SOLVERS[solver][1]:
        supported = sorted(name for name, (_, p) in SOLVERS.items() if penalty in p)
        raise ValueError(
            f"solver={solver!r} does not support penalty={penalty!r}; solvers for it: "
            f"{supported}."
        )
    grid = check_Cs(Cs)
    X, y = check_X_y(X, y, accept_sparse="csr", dtype=[np.float64, np.float32], order="C")
    classes, y_encoded = encode_labels(y, "regularization_path")
    weights = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    if class_weight is not None:
        per_class = class_weight_vector(class_weight, classes, y, weights)
        class_weights = per_class[y_encoded].astype(X.dtype)
        weights = class_weights if weights is None else weights * class_weights
        if not np.any(weights > 0):
            raise ValueError("class_weight and sample_weight leave every sample with weight 0.")
    penalty_ = Penalty.from_params(penalty, l1_ratio)
    params, n_iter, converged, name = solve_path(
        X, y_encoded, len(classes), weights, fit_intercept, grid, penalty_, solver, tol,
        max_iter, verbose,
    )
    if not converged.all():
        warnings.warn(
            f"{name} did not converge at C = {grid[~converged].tolist()}; increase max_iter "
            "or loosen tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    d = X.shape[1]
    coefs = np.ascontiguousarray(params[:, :, :d])
    if fit_intercept:
        intercepts = np.ascontiguousarray(params[:, :, d])
    else:
        intercepts = np.zeros(params.shape[:2], dtype=params.dtype)
    return RegularizationPath(
        Cs=grid,
        coefs=coefs,
        intercepts=intercepts,
        n_iter=n_iter,
        converged=converged,
        classes=classes,
        penalty=penalty,
        l1_ratio=None if l1_ratio is None else float(l1_ratio),
        solver=name,
    )
