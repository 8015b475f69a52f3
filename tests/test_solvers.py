"""Every solver reaches the same optimum: dense, sparse, weighted, float32, with and without
penalty; the optimum is certified by the gradient computed independently in the test."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax as scipy_softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers import SOLVERS
from softmaxreg._solvers._auto import choose_solver

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SMOOTH_SOLVERS = sorted(name for name, (_, penalties) in SOLVERS.items() if "l2" in penalties)


def _problem(kind):
    X, y = make_classification(
        600, 12, n_informative=8, n_redundant=2, n_classes=4, random_state=0
    )
    sample_weight = None
    if kind == "sparse":
        X = X * (np.random.default_rng(0).random(X.shape) < 0.3)
        X = sp.csr_matrix(X)
    if kind == "weighted":
        sample_weight = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
    if kind == "float32":
        X = X.astype(np.float32)
    return X, y, sample_weight


def design_gradient(X, y, params, sample_weight, C):
    """Gradient of DESIGN's f written out in the test: C * [X,1]^T (P - Y) + [W, 0]."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    augmented = np.hstack([X, np.ones((X.shape[0], 1))])
    proba = scipy_softmax(augmented @ params.T.astype(np.float64), axis=1)
    proba[np.arange(len(y)), y] -= 1
    weights = np.ones(len(y)) if sample_weight is None else sample_weight
    gradient = C * (proba * weights[:, None]).T @ augmented
    gradient[:, :-1] += params[:, :-1]
    return gradient


def sklearn_probabilities(X, y, C):
    """Probabilities [n, K] at scikit-learn's optimum (its newton-cholesky at tol 1e-12)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    return model.fit(X, y).predict_proba(X)


def probabilities(X, params):
    """Softmax of ``[X, 1] params^T`` in float64, written out in the test."""
    augmented = np.hstack([np.asarray(X, dtype=np.float64), np.ones((X.shape[0], 1))])
    return scipy_softmax(augmented @ params.T.astype(np.float64), axis=1)


@pytest.mark.parametrize("kind", ["dense", "sparse", "weighted", "float32"])
def test_all_solvers_reach_the_same_objective(kind):
    X, y, sample_weight = _problem(kind)
    objective = SoftmaxObjective(X, y, 4, sample_weight, True, 0.5, Penalty("l2"))
    values = {}
    for name in SMOOTH_SOLVERS:  # at their default stopping rule
        solve, _ = SOLVERS[name]
        result = solve(objective, objective.initial_params(), max_iter=2000)
        assert result.converged, name
        params64 = result.params.astype(np.float64)
        objective64 = SoftmaxObjective(
            X.astype(np.float64), y, 4, sample_weight, True, 0.5, Penalty("l2")
        )
        values[name] = objective64.value(params64)
        gradient = design_gradient(X, y, params64, sample_weight, 0.5)
        scale = 0.5 * (len(y) if sample_weight is None else sample_weight.sum())
        assert np.max(np.abs(gradient)) / scale <= (1e-4 if kind == "float32" else 1e-8), name
    best = min(values.values())
    for name, value in values.items():
        assert (value - best) / abs(best) <= 1e-8, name


@pytest.mark.parametrize("solver", ["auto", "newton-cg", "newton-cholesky"])
def test_unpenalised_solvers_agree(solver):
    """The digits subset on which a default newton-cg fit once ran to max_iter: every solver
    converges at default settings, without a warning, to scikit-learn's optimum (polished by
    the robustness suite's independent Newton steps: on some CPUs scikit-learn's
    newton-cholesky meets the constant column's singular Hessian, falls back to lbfgs and
    stops 1e-5 short)."""
    import robustness

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, ::4])  # 16 features: not separable
    coef, intercept = robustness.reference_fit(robustness.Problem("digits16", X, y, None))
    reference = probabilities(X, np.hstack([coef, intercept[:, None]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxRegression(penalty=None, solver=solver).fit(X, y)
    assert model.converged_
    np.testing.assert_allclose(model.predict_proba(X), reference, atol=1e-6)


@pytest.mark.parametrize("solver", SMOOTH_SOLVERS)
def test_solver_results_are_finite_records(solver):
    X, y, _ = _problem("dense")
    objective = SoftmaxObjective(X, y, 4, None, True, 1.0, Penalty("l2"))
    result = SOLVERS[solver][0](objective, objective.initial_params(), max_iter=500)
    assert result.converged and result.n_iter >= 1
    assert result.gradient_norm <= 1e-8 and result.n_passes >= result.n_iter
    assert result.objective == pytest.approx(objective.value(result.params), rel=1e-12)


def test_auto_choice_rule():
    # newton-cholesky only where K * p <= 100 and n (K p)^2 <= 1e6
    assert choose_solver(np.zeros((150, 4)), 3, "l2") == "newton-cholesky"  # iris
    assert choose_solver(np.zeros((1000, 5)), 3, "l2") == "newton-cholesky"  # 324k
    assert choose_solver(np.zeros((1000, 5)), 3, None, fit_intercept=False) == "newton-cholesky"
    assert choose_solver(np.zeros((20_000, 10)), 8, "l2") == "newton-cg"  # many rows
    assert choose_solver(np.zeros((50, 100)), 10, "l2") == "newton-cg"  # K * p = 1010
    assert choose_solver(sp.csr_matrix((1000, 5000)), 20, "l2") == "newton-cg"
    assert choose_solver(np.zeros((150, 4)), 3, "l1") == "prox-newton"


def test_newton_cholesky_converges_where_the_objective_cannot_show_its_decrease():
    """Near the optimum a Newton step promises a decrease below the objective's rounding, so
    comparing objective values is noise there. The solver must then follow the gradient and
    converge in a step or two. It used to backtrack on that noise: iris along a CV path
    stayed at max|gradient| 1.8e-10 for 100 iterations at tol 1e-10. Here every value the
    line search computes is a few units in the last place too high, as a differently
    rounded evaluation can be."""
    from sklearn.datasets import load_iris

    newton_cholesky = SOLVERS["newton-cholesky"][0]
    X, y = load_iris(return_X_y=True)
    objective = SoftmaxObjective(X, y, 3, None, True, 0.1, Penalty("l2"))
    optimum = newton_cholesky(objective, objective.initial_params(), tol=1e-14).params
    # a start whose gradient is about 1e-9 and whose excess objective (~1e-18) is far below
    # the objective's rounding (64 eps |F| ~ 6e-15)
    start = optimum + 1e-9 * np.random.default_rng(0).standard_normal(optimum.shape)
    value, gradient = objective.loss_gradient(start)
    assert np.abs(gradient).max() > 1e-11
    assert value - objective.value(optimum) < np.finfo(float).eps * value

    class RoundedUp(SoftmaxObjective):
        def loss(self, params):
            value = super().loss(params)
            return value + 8 * np.finfo(float).eps * abs(value)

    rounded = RoundedUp(X, y, 3, None, True, 0.1, Penalty("l2"))
    result = newton_cholesky(rounded, start, tol=1e-13, max_iter=20)
    assert result.converged and result.n_iter <= 3
    np.testing.assert_allclose(
        probabilities(X, result.params), sklearn_probabilities(X, y, 0.1), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("solver", SMOOTH_SOLVERS)
@pytest.mark.parametrize("data, dtype", [("iris", np.float64), ("dense", np.float32)])
def test_a_tol_below_the_datas_precision_is_capped_at_it(solver, data, dtype):
    """A tol below what the data's precision allows is capped at the objective's rounding:
    the fit converges in a few iterations, at the optimum, instead of retrying to max_iter."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True) if data == "iris" else _problem(data)[:2]
    K = len(np.unique(y))
    objective = SoftmaxObjective(X.astype(dtype), y, K, None, True, 1.0, Penalty("l2"))
    result = SOLVERS[solver][0](objective, objective.initial_params(), tol=1e-30, max_iter=300)
    assert result.converged and result.n_iter < 150
    np.testing.assert_allclose(
        probabilities(X, result.params),
        sklearn_probabilities(X, y, 1.0),
        rtol=0,
        atol=1e-10 if dtype == np.float64 else 1e-4,
    )



@pytest.mark.parametrize("kind", ["coarse-space", "diagonal"])
def test_steihaug_tracked_norm_is_the_preconditioner_metric(kind):
    """Steihaug tracks ||z||_M by recurrences, M the inverse of what ``solve`` applies on
    class-centred vectors: checked against M formed densely in the test. A step cut by the
    trust region has ||z||_M = radius; an interior step decreases the model as predicted."""
    from softmaxreg._solvers._preconditioners import DiagonalPreconditioner
    from softmaxreg._solvers._sparse_preconditioner import coarse_space_preconditioner
    from softmaxreg._solvers.newton_cg import _steihaug

    X, y, _ = _problem("sparse" if kind == "coarse-space" else "dense")
    objective = SoftmaxObjective(X, y, 4, None, True, 10.0, Penalty("l2"))
    params = np.random.default_rng(0).standard_normal(objective.shape) * 0.1
    params -= params.mean(axis=0)
    _, gradient, hessp = objective.loss_gradient_hessp(params)
    if kind == "coarse-space":
        metric = coarse_space_preconditioner(objective, hessp)
    else:
        metric = DiagonalPreconditioner(hessp.diagonal())
    # M on the centred subspace: the inverse of [solve(e_j)] restricted to it
    K, p = objective.shape
    basis = np.linalg.qr(np.kron(np.eye(K) - 1.0 / K, np.eye(p)))[0][:, : (K - 1) * p]
    applied = np.column_stack(
        [metric.solve(column.reshape(K, p)).ravel() for column in basis.T]
    )
    inverse = basis.T @ applied
    M_centred = np.linalg.inv(0.5 * (inverse + inverse.T))

    def m_norm(step):
        coords = basis.T @ step.ravel()
        return float(np.sqrt(coords @ M_centred @ coords))

    calls = []

    def counted(direction):
        calls.append(1)
        return hessp(direction)

    full, length, predicted, on_boundary, solved = _steihaug(
        gradient, counted, metric, 1e6, 1e-10, 200
    )
    assert solved and not on_boundary and 0 < len(calls) < 200
    assert length == pytest.approx(m_norm(full), rel=1e-6)
    model = float(np.vdot(gradient, full)) + 0.5 * float(np.vdot(full, hessp(full)))
    assert predicted == pytest.approx(-model, rel=1e-9)
    radius = 0.3 * length
    step, length, predicted, on_boundary, solved = _steihaug(
        gradient, hessp, metric, radius, 1e-10, 200
    )
    assert on_boundary and not solved and length == radius
    assert m_norm(step) == pytest.approx(radius, rel=1e-6)
    # the model value is tracked by recurrence, not from H z: the cut step's too
    model = float(np.vdot(gradient, step)) + 0.5 * float(np.vdot(step, hessp(step)))
    assert predicted == pytest.approx(-model, rel=1e-9)


def test_class_block_preconditioner_inverts_the_hessians_diagonal_blocks():
    """The class blocks are the diagonal [p, p] blocks of the full Hessian (formed here by
    its own code path), and ``solve`` applies their inverses class by class, then centres:
    checked against NumPy's dense solve, and symmetric positive definite on the centred
    subspace."""
    from softmaxreg._solvers._preconditioners import ClassBlockPreconditioner

    X, y, sample_weight = _problem("weighted")
    objective = SoftmaxObjective(X, y, 4, sample_weight, True, 10.0, Penalty("l2"))
    params = np.random.default_rng(1).standard_normal(objective.shape) * 0.3
    params -= params.mean(axis=0)
    _, _, hessp = objective.loss_gradient_hessp(params)
    K, p = objective.shape
    full = objective.hessian(params).reshape(K, p, K, p)
    blocks = hessp.class_blocks()
    for k in range(K):
        np.testing.assert_allclose(blocks[k], full[k, :, k, :], rtol=1e-10, atol=1e-12)
    metric = ClassBlockPreconditioner(blocks)
    residual = np.random.default_rng(2).standard_normal((K, p))
    residual -= residual.mean(axis=0)
    expected = np.array([np.linalg.solve(full[k, :, k, :], residual[k]) for k in range(K)])
    expected -= expected.mean(axis=0)
    # (the preconditioner adds a ridge of 1e-12 of each block's largest entry)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(metric.solve(residual), expected, rtol=1e-8, atol=1e-9 * scale)
    basis = np.linalg.qr(np.kron(np.eye(K) - 1.0 / K, np.eye(p)))[0][:, : (K - 1) * p]
    applied = np.column_stack([metric.solve(c.reshape(K, p)).ravel() for c in basis.T])
    inverse = basis.T @ applied
    np.testing.assert_allclose(inverse, inverse.T, rtol=1e-10, atol=1e-12 * np.abs(inverse).max())
    assert np.linalg.eigvalsh(inverse).min() > 0
