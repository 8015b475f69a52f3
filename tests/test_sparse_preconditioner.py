"""The coarse-space preconditioner of Newton-CG for sparse X: its algebra checked against
dense matrices built in the test, and the optimum it leads to against other solvers."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification

from softmaxreg import SoftmaxRegression
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers import SOLVERS, _sparse_preconditioner
from softmaxreg._solvers._sparse_preconditioner import (
    CoarseBasis,
    coarse_space_preconditioner,
)
from softmaxreg._solvers.newton_cg import choose_preconditioner, newton_cg


def _sparse_problem(n=300, d=30, K=4, density=0.25, seed=0, dtype=np.float64):
    informative = min(10, d)
    X, y = make_classification(
        n,
        d,
        n_informative=informative,
        n_redundant=min(4, d - informative),
        n_classes=K,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    # nonnegative, row-normalised and sparse, like TF-IDF
    X = np.abs(X) * (rng.random(X.shape) < density)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return sp.csr_matrix(X.astype(dtype)), y


def _objective(X, y, sample_weight=None, fit_intercept=True, C=1.0, penalty="l2"):
    return SoftmaxObjective(
        X, y, int(y.max()) + 1, sample_weight, fit_intercept, C, Penalty(penalty)
    )


def _point(objective, seed=1):
    """A class-centred point away from the start, where probabilities differ per sample."""
    params = np.random.default_rng(seed).normal(scale=2.0, size=objective.shape)
    return (params - params.mean(axis=0)).astype(objective.dtype)


def _dense_matrix(apply, shape):
    """Matrix [Kp, Kp] of a linear map of [K, p] arrays, column by column."""
    size = shape[0] * shape[1]
    columns = [apply(np.eye(size)[i].reshape(shape)).ravel() for i in range(size)]
    return np.array(columns).T


def _centred_basis(shape):
    """Orthonormal basis [Kp, (K-1)p] of the class-centred [K, p] arrays."""
    K, p = shape
    centring = np.kron(np.eye(K) - 1.0 / K, np.eye(p))
    values, vectors = np.linalg.eigh(centring)
    return vectors[:, values > 0.5]


@pytest.mark.parametrize(
    "options",
    [{}, {"sample_weight": "random"}, {"fit_intercept": False}, {"penalty": None}],
    ids=["plain", "weighted", "no-intercept", "unpenalised"],
)
def test_preconditioner_is_spd_and_its_norm_is_its_inverse(options):
    X, y = _sparse_problem()
    options = dict(options)
    if options.get("sample_weight") == "random":
        options["sample_weight"] = np.random.default_rng(2).uniform(0.2, 3.0, len(y))
    objective = _objective(X, y, **options)
    _, _, hessp = objective.loss_gradient_hessp(_point(objective))
    preconditioner = coarse_space_preconditioner(objective, hessp)
    shape = objective.shape

    # solve, restricted to class-centred arrays, is symmetric positive definite
    N = _dense_matrix(preconditioner.solve, shape)
    B = _centred_basis(shape)
    N_centred = B.T @ N @ B
    np.testing.assert_allclose(N_centred, N_centred.T, atol=1e-10 * np.abs(N_centred).max())
    assert np.linalg.eigvalsh(N_centred).min() > 0

    # the metric M of ``norm`` (recovered by polarisation) is the inverse of the
    # uncentred map whose centred image ``solve`` returns: solve(M v) = centred v
    size = shape[0] * shape[1]
    eye = np.eye(size)
    squares = np.array([preconditioner.norm(e.reshape(shape)) ** 2 for e in eye])
    M = np.empty((size, size))
    for i in range(size):
        for j in range(i, size):
            both = preconditioner.norm((eye[i] + eye[j]).reshape(shape)) ** 2
            M[i, j] = M[j, i] = 0.5 * (both - squares[i] - squares[j])
    assert np.linalg.eigvalsh(M).min() > 0
    rng = np.random.default_rng(3)
    v = rng.normal(size=shape)
    solved = preconditioner.solve((M @ v.ravel()).reshape(shape))
    np.testing.assert_allclose(solved, v - v.mean(axis=0), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("row_chunk", [8192, 7], ids=["one-chunk", "chunks-of-7-rows"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_metric_is_the_exact_hessian_on_the_coarse_space(monkeypatch, row_chunk, weighted):
    # the coarse Hessian is summed over row chunks (7 rows: 43 chunks and a partial one)
    monkeypatch.setattr(_sparse_preconditioner, "ROW_CHUNK", row_chunk)
    X, y = _sparse_problem(K=5)
    sample_weight = np.random.default_rng(5).uniform(0.2, 3.0, len(y)) if weighted else None
    objective = _objective(X, y, sample_weight=sample_weight)
    _, _, hessp = objective.loss_gradient_hessp(_point(objective))
    preconditioner = coarse_space_preconditioner(objective, hessp)
    features = CoarseBasis.of(objective).features  # [p, m]
    rng = np.random.default_rng(4)
    for _ in range(5):
        classes = rng.normal(size=(objective.shape[0], features.shape[1]))
        step = (classes - classes.mean(axis=0)) @ features.T  # in U kron F, centred
        curvature = float(np.vdot(step, hessp(step)))
        assert preconditioner.norm(step) ** 2 == pytest.approx(curvature, rel=1e-9)


def test_basis_holds_the_leading_singular_vectors_and_the_intercept():
    X, _ = _sparse_problem(n=400, d=50)
    basis = CoarseBasis(X, fit_intercept=True, rank=3)
    features = basis.features
    assert features.shape == (51, 4)
    np.testing.assert_allclose(features.T @ features, np.eye(4), atol=1e-10)
    np.testing.assert_array_equal(features[-1], [0, 0, 0, 1])
    # the dominant direction is found accurately; the span holds most of the top-3 energy
    # (the range finder runs one power iteration: the coarse space needs no more)
    _, singular, leading = np.linalg.svd(X.toarray(), full_matrices=False)
    assert np.linalg.norm(leading[0] @ features[:-1, :3]) > 0.99
    energy = np.linalg.norm(X @ features[:-1, :3]) ** 2
    assert energy >= 0.95 * np.sum(singular[:3] ** 2)
    np.testing.assert_allclose(basis.scores[:, :3], X @ features[:-1, :3], atol=1e-12)
    assert np.all(basis.scores[:, 3] == 1)


def test_auto_chooses_it_for_sparse_x_only():
    X, y = _sparse_problem()
    assert choose_preconditioner(_objective(X, y)) == "coarse-space"
    assert choose_preconditioner(_objective(X.toarray(), y)) != "coarse-space"


@pytest.mark.parametrize(
    "case", ["plain", "weighted", "no-intercept", "binary", "float32", "narrow"]
)
def test_newton_cg_reaches_the_optimum_of_other_solvers(case):
    X, y = _sparse_problem(
        K=2 if case == "binary" else 4,
        d=3 if case == "narrow" else 30,
        dtype=np.float32 if case == "float32" else np.float64,
    )
    sample_weight = None
    if case == "weighted":
        sample_weight = np.random.default_rng(5).uniform(0.1, 3.0, len(y))
    fit_intercept = case != "no-intercept"
    objective = _objective(X, y, sample_weight, fit_intercept, C=10.0)
    tol = 1e-5 if case == "float32" else 1e-10
    result = newton_cg(objective, objective.initial_params(), tol=tol, preconditioner="auto")
    assert result.converged
    assert result.params.dtype == X.dtype
    objective64 = _objective(X.astype(np.float64), y, sample_weight, fit_intercept, C=10.0)
    for name in ("newton-cholesky", "lbfgs"):
        reference = SOLVERS[name][0](
            objective64, objective64.initial_params(), tol=1e-10, max_iter=5000
        )
        value = objective64.value(result.params.astype(np.float64))
        bound = 1e-6 if case == "float32" else 1e-8
        assert abs(value - reference.objective) / abs(reference.objective) <= bound, name


def test_estimator_on_csr_matches_dense_fit():
    X, y = _sparse_problem(n=500, d=40, K=3)
    sparse_fit = SoftmaxRegression(C=5.0, tol=1e-9).fit(X, y)
    dense_fit = SoftmaxRegression(C=5.0, tol=1e-9).fit(X.toarray(), y)
    np.testing.assert_allclose(sparse_fit.coef_, dense_fit.coef_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sparse_fit.intercept_, dense_fit.intercept_, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "n, d, density, C, layout",
    [(400, 60, 0.1, 100.0, "csr"), (80, 300, 0.1, 1.0, "csr"), (80, 100, 0.6, 1.0, "csc")],
    ids=["narrow", "wide", "wide-csc-copy"],
)
def test_float64_csr_products_run_in_float32_and_reach_the_same_optimum(
    monkeypatch, n, d, density, C, layout
):
    """Products and CG vectors are float32 (on CSR, or a CSC copy for wide X where it fits
    in memory: ``SoftmaxObjective.pass_design``); the gradient
    and the objective stay float64 and reach the dense Newton-Cholesky optimum."""
    from softmaxreg import _loss

    rng = np.random.default_rng(0)
    X = sp.random(n, d, density=density, format="csr", random_state=1, dtype=np.float64)
    y = rng.integers(0, 4, n)
    dtypes = []
    original = _loss.HessianProduct.__call__

    def spy(self, direction):
        dtypes.append((self.proba.dtype, direction.dtype, self.X.format))
        return original(self, direction)

    monkeypatch.setattr(_loss.HessianProduct, "__call__", spy)
    objective = SoftmaxObjective(X, y, 4, None, True, C, Penalty("l2"))
    result = newton_cg(objective, objective.initial_params(), tol=1e-10)
    assert result.converged and result.params.dtype == np.float64
    assert dtypes and set(dtypes) == {(np.dtype(np.float32), np.dtype(np.float32), layout)}
    dense = SoftmaxObjective(X.toarray(), y, 4, None, True, C, Penalty("l2"))
    reference = SOLVERS["newton-cholesky"][0](dense, dense.initial_params(), tol=1e-12)
    assert result.objective == pytest.approx(reference.objective, rel=1e-12)


@pytest.mark.parametrize("kind", ["coarse-space", "diagonal"])
def test_float32_residuals_are_solved_in_float32_as_in_float64(kind):
    from softmaxreg._solvers.newton_cg import _make_preconditioner

    X, y = _sparse_problem()
    objective = _objective(X, y)
    _, gradient, hessp = objective.loss_gradient_hessp(_point(objective))
    metric = _make_preconditioner(objective, hessp, kind, None)
    for layout in (np.ascontiguousarray, np.asfortranarray):
        single = metric.solve(layout(gradient.astype(np.float32)))
        assert single.dtype == np.float32
        np.testing.assert_allclose(
            single, metric.solve(layout(gradient)), rtol=1e-4, atol=1e-6 * np.abs(single).max()
        )


class _RejectFirstCandidates:
    """The objective, except that its first ``n`` candidates' losses are +inf, so that
    newton-cg rejects them and solves again from the same point."""

    def __init__(self, objective, n):
        self._objective, self._left = objective, n

    def __getattr__(self, name):
        return getattr(self._objective, name)

    def loss_hessp(self, params):
        value, hessp = self._objective.loss_hessp(params)
        if self._left:
            self._left -= 1
            value = np.inf
        return value, hessp


def test_newton_cg_after_rejected_steps_solves_with_the_gradient_again(monkeypatch):
    """On sparse X CG overwrites the gradient with its residual and a candidate's gradient is
    formed only once the step is accepted. After a rejected step the next CG must get the
    same gradient as the one before (formed again from the probabilities kept), and the fit
    the optimum of an unperturbed one."""
    newton_cg_module = sys.modules["softmaxreg._solvers.newton_cg"]
    X, y = _sparse_problem(n=120, d=200, K=3)  # wide: read from the CSC copy
    objective = _objective(X, y, C=10.0)
    right_hand_sides = []
    original = newton_cg_module._steihaug

    def spy(gradient, *args, **kwargs):
        right_hand_sides.append(gradient.copy())
        return original(gradient, *args, **kwargs)

    monkeypatch.setattr(newton_cg_module, "_steihaug", spy)
    reference = newton_cg(objective, objective.initial_params(), tol=1e-10)
    right_hand_sides.clear()
    result = newton_cg(_RejectFirstCandidates(objective, 2), objective.initial_params(), tol=1e-10)
    # (the rejections shrank the trust region: more, shorter steps than the reference's)
    assert result.converged and len(right_hand_sides) > 3
    true_gradient = objective.loss_gradient(objective.initial_params())[1]
    for rhs in right_hand_sides[:3]:
        assert rhs.dtype == np.float32  # the gradient is held in CG's dtype
        np.testing.assert_array_equal(rhs, true_gradient.astype(np.float32))
    assert result.objective == pytest.approx(reference.objective, rel=1e-13)
    np.testing.assert_allclose(result.params, reference.params, atol=1e-7)


def test_newton_cg_on_sparse_x_holds_a_candidates_gradient_only_once_accepted(monkeypatch):
    """Every candidate is evaluated without its gradient; gradients are formed for the
    accepted ones only (and again at a point after a rejection)."""
    X, y = _sparse_problem(n=120, d=200, K=3)
    objective = _objective(X, y, C=10.0)
    calls = []
    for name in ("loss_hessp", "gradient", "loss_gradient_hessp"):
        method = getattr(SoftmaxObjective, name)
        monkeypatch.setattr(
            SoftmaxObjective, name,
            lambda self, *a, _m=method, _n=name: calls.append(_n) or _m(self, *a),
        )
    result = newton_cg(objective, objective.initial_params(), tol=1e-10)
    assert result.converged
    assert calls[0] == "loss_gradient_hessp" and calls.count("loss_gradient_hessp") == 1
    assert calls.count("loss_hessp") == result.n_iter
    assert 1 <= calls.count("gradient") <= result.n_iter
