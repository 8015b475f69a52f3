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


def check_relax(relax) -> bool | float:
    """Validated ``relax``: False, True (unpenalised refits) or a positive C (L2 refits).

    Raises
    ------
    ValueError
        For anything else (a number that is not positive and finite, a string...).
    """
    if isinstance(relax, bool | np.bool_):
        return bool(relax)
    if isinstance(relax, numbers.Real) and np.isfinite(relax) and relax > 0:
        return float(relax)
    raise ValueError(
        "relax must be False, True (unpenalised refits on each support) or a positive "
        f"float (the C of an L2-penalised refit); got relax={relax!r}."
    )


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
    relaxed_coefs : ndarray of shape (n_Cs, K, d) or None
        With ``relax``: at every ``C``, the refit on that solution's support (the features
        with a nonzero coefficient for some class), unpenalised or L2-penalised as ``relax``
        says; zero off the support. None without ``relax``.
    relaxed_intercepts : ndarray of shape (n_Cs, K) or None
    relaxed_converged : ndarray of shape (n_Cs,) or None
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
    relaxed_coefs: np.ndarray | None = None
    relaxed_intercepts: np.ndarray | None = None
    relaxed_converged: np.ndarray | None = None

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
    tol: float | None,
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


def relaxed_path(
    X,
    y_encoded: np.ndarray,
    n_classes: int,
    weights: np.ndarray | None,
    fit_intercept: bool,
    params: np.ndarray,
    relax: bool | float,
    tol: float | None,
    max_iter: int,
    verbose: int = 0,
):
    """Refit every solution of a path on its support (glmnet's ``relax``).

    The support of a solution is the set of features with a nonzero coefficient for some
    class (glmnet's active set). The refit keeps the other coefficients at zero and fits
    the rest without a penalty (``relax=True``) or with an L2 penalty at ``C = relax``,
    started from the penalised solution; consecutive equal supports share one refit.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n, d)
    y_encoded, n_classes, weights, fit_intercept
        As ``solve_path``.
    params : ndarray of shape (n_Cs, K, p)
        The penalised path.
    relax : True or float
    tol, max_iter, verbose
        Passed to the smooth solver.

    Returns
    -------
    relaxed : ndarray of shape (n_Cs, K, p)
    converged : ndarray of shape (n_Cs,)
    """
    d = X.shape[1]
    unpenalised = Penalty.from_params(None, None)
    if relax is True:
        penalty, C = unpenalised, 1.0
    else:
        penalty, C = Penalty.from_params("l2", None), float(relax)
    relaxed = np.zeros_like(params)
    converged = np.ones(len(params), dtype=bool)
    previous = None
    for i, solution in enumerate(params):
        support = np.flatnonzero(np.any(solution[:, :d] != 0, axis=0))
        if previous is not None and np.array_equal(support, previous):
            relaxed[i], converged[i] = relaxed[i - 1], converged[i - 1]
            continue
        previous = support
        columns = np.append(support, d) if fit_intercept else support
        start = solution[:, columns] - solution[:, columns].mean(axis=0)
        sub_params, _, sub_converged, _ = solve_path(
            X[:, support], y_encoded, n_classes, weights, fit_intercept, np.array([C]),
            penalty if len(support) else unpenalised, "auto", tol, max_iter, verbose,
            params0=start,
        )
        relaxed[i][:, columns] = sub_params[0]
        converged[i] = sub_converged[0]
    return relaxed, converged


def not_converged_message(solver: str, Cs) -> str:
    """The ConvergenceWarning of a path, naming the ``C`` values that did not converge."""
    listed = ", ".join(f"{C:.6g}" for C in Cs)
    return (
        f"{solver} did not converge at C = [{listed}]; increase max_iter, loosen tol, or "
        "leave out the largest Cs."
    )


def regularization_path(
    X,
    y,
    Cs=10,
    penalty: str | None = "l1",
    l1_ratio: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    class_weight=None,
    tol: float | None = None,
    max_iter: int = 1000,
    solver: str = "auto",
    verbose: int = 0,
    relax: bool | float = False,
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
    tol : float or None, default=None
        Solver tolerance at every ``C`` (same meaning as in ``SoftmaxRegression``).
    max_iter : int, default=1000
        Solver iterations allowed at every ``C``.
    solver : str, default="auto"
    verbose : int, default=0
    relax : bool or float, default=False
        Also refit every solution on its support, as glmnet's ``relax=TRUE``: ``True``
        without a penalty, a positive float with an L2 penalty at that ``C`` (for supports
        on which the classes are separable, where the unpenalised fit does not exist).

    Returns
    -------
    RegularizationPath
        ``Cs`` [n_Cs], ``coefs`` [n_Cs, K, d], ``intercepts`` [n_Cs, K], ``n_iter`` and
        ``converged`` [n_Cs], ``classes`` [K]; with ``relax`` also ``relaxed_coefs``,
        ``relaxed_intercepts`` and ``relaxed_converged``.

    Warns
    -----
    ConvergenceWarning
        Naming the ``C`` values at which a fit (or a relaxed refit) did not converge.

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
    relax = check_relax(relax)
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
        warnings.warn(not_converged_message(name, grid[~converged]), ConvergenceWarning,
                      stacklevel=2)
    relaxed = {}
    if relax is not False:
        relaxed_params, relaxed_converged = relaxed_path(
            X, y_encoded, len(classes), weights, fit_intercept, params, relax, tol, max_iter,
            verbose,
        )
        if not relaxed_converged.all():
            warnings.warn(
                not_converged_message("The relaxed refit", grid[~relaxed_converged]),
                ConvergenceWarning,
                stacklevel=2,
            )
        relaxed_coefs, relaxed_intercepts = split_path(relaxed_params, X.shape[1], fit_intercept)
        relaxed = {
            "relaxed_coefs": relaxed_coefs,
            "relaxed_intercepts": relaxed_intercepts,
            "relaxed_converged": relaxed_converged,
        }
    coefs, intercepts = split_path(params, X.shape[1], fit_intercept)
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
        **relaxed,
    )


def split_path(params: np.ndarray, n_features: int, fit_intercept: bool):
    """``(coefs [n_Cs, K, d], intercepts [n_Cs, K])`` of path params [n_Cs, K, p]."""
    coefs = np.ascontiguousarray(params[:, :, :n_features])
    if fit_intercept:
        return coefs, np.ascontiguousarray(params[:, :, n_features])
    return coefs, np.zeros(params.shape[:2], dtype=params.dtype)
