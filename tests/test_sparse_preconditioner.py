"""The coarse-space preconditioner of Newton-CG for sparse X: its solve checked against the
two-level formula evaluated on the whole Hessian formed in the test, its basis against
NumPy's SVD, and the optimum Newton-CG reaches under it against other solvers."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax as scipy_softmax
from sklearn.datasets import make_classification

from softmaxreg import SoftmaxRegression
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers import SOLVERS, _sparse_preconditioner
from softmaxreg._solvers._preconditioners import DiagonalPreconditioner
from softmaxreg._solvers._sparse_preconditioner import (
    CoarseBasis,
    CoarseSpacePreconditioner,
    coarse_space_preconditioner,
)
from softmaxreg._solvers.newton_cg import Policy, newton_cg

# Newton-CG takes the coarse space on sparse X whose columns are too many for the Kronecker
# form; these problems are small, so the tests lower that limit to reach it
COARSE_ONLY = Policy(kronecker_max_features=0)


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


def _whole_hessian(objective, params):
    """Hessian of the scaled smooth objective [Kp, Kp], from SciPy's softmax:
    ``sum_i s_i (diag p_i - p_i p_i^T) kron x_i x_i^T / S`` plus the ridge on the
    coefficients."""
    X = objective.X.toarray().astype(np.float64)
    if objective.fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    proba = scipy_softmax(X @ params.astype(np.float64).T, axis=1)
    weights = np.ones(len(proba)) if objective.sample_weight is None else objective.sample_weight
    curvature = np.einsum("ik,kl->ikl", proba, np.eye(proba.shape[1]))
    curvature -= proba[:, :, None] * proba[:, None, :]
    K, p = objective.shape
    hessian = np.einsum("i,ikl,ia,ib->kalb", weights, curvature, X, X) / weights.sum()
    hessian = hessian.reshape(K * p, K * p)
    ridge = np.zeros(objective.shape)
    ridge[:, : p - int(objective.fit_intercept)] = objective.l2_strength
    return hessian + np.diag(ridge.ravel())


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


@pytest.mark.parametrize("row_chunk", [8192, 7], ids=["one-chunk", "chunks-of-7-rows"])
@pytest.mark.parametrize(
    "options",
    [{}, {"sample_weight": "random"}, {"fit_intercept": False}, {"penalty": None}],
    ids=["plain", "weighted", "no-intercept", "unpenalised"],
)
def test_solve_is_the_two_level_formula_on_the_whole_hessian(monkeypatch, options, row_chunk):
    """``solve`` is ``P N`` with ``N = D^{-1} + Q (E^{-1} - G^{-1}) Q^T`` (P the class
    centring): D the diagonal of the whole Hessian H, Q = U kron F for any orthonormal basis
    U of class-centred vectors and the basis's feature vectors F, E = Q^T H Q, G = Q^T D Q;
    and it is symmetric positive definite on class-centred arrays."""
    # the coarse Hessian is summed over row chunks (7 rows: 42 chunks and a partial one)
    monkeypatch.setattr(_sparse_preconditioner, "ROW_CHUNK", row_chunk)
    X, y = _sparse_problem()
    options = dict(options)
    if options.get("sample_weight") == "random":
        options["sample_weight"] = np.random.default_rng(2).uniform(0.2, 3.0, len(y))
    objective = _objective(X, y, **options)
    params = _point(objective)
    _, _, hessp = objective.loss_gradient_hessp(params)
    preconditioner = coarse_space_preconditioner(objective, hessp)
    shape = objective.shape
    K, p = shape

    hessian = _whole_hessian(objective, params)
    diagonal = np.diag(hessian)
    features = CoarseBasis.of(objective).features  # [p, m]
    class_basis = np.linalg.qr(np.eye(K) - 1.0 / K)[0][:, : K - 1]  # a centred basis
    Q = np.kron(class_basis, features)
    E = Q.T @ hessian @ Q
    G = Q.T @ (diagonal[:, None] * Q)
    N = np.diag(1.0 / diagonal) + Q @ (np.linalg.inv(E) - np.linalg.inv(G)) @ Q.T
    centring = np.kron(np.eye(K) - 1.0 / K, np.eye(p))
    expected = centring @ N

    solve = _dense_matrix(preconditioner.solve, shape)
    # the diagonal is held in float32: relative errors of ~1e-7 on D^{-1}
    np.testing.assert_allclose(solve, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    B = _centred_basis(shape)
    N_centred = B.T @ solve @ B
    np.testing.assert_allclose(N_centred, N_centred.T, atol=1e-10 * np.abs(N_centred).max())
    assert np.linalg.eigvalsh(N_centred).min() > 0


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


def test_the_objective_builds_it_for_sparse_x_only():
    X, y = _sparse_problem()
    assert _objective(X.toarray(), y).coarse_space_preconditioner is None
    objective = _objective(X, y)
    _, gradient, hessp = objective.loss_gradient_hessp(_point(objective))
    built = objective.coarse_space_preconditioner(hessp)
    assert isinstance(built, CoarseSpacePreconditioner)
    direct = coarse_space_preconditioner(objective, hessp)
    np.testing.assert_array_equal(built.solve(gradient), direct.solve(gradient))
    # the basis is computed once per data set (X does not change in a fit)
    assert CoarseBasis.of(objective) is CoarseBasis.of(objective)


@pytest.mark.parametrize(
    "case", ["plain", "weighted", "no-intercept", "binary", "float32", "narrow"]
)
def test_newton_cg_reaches_the_optimum_of_other_solvers(monkeypatch, case):
    built = []
    original = _sparse_preconditioner.coarse_space_preconditioner

    def spy(objective, hessp):
        built.append(1)
        return original(objective, hessp)

    monkeypatch.setattr(_sparse_preconditioner, "coarse_space_preconditioner", spy)
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
    result = newton_cg(objective, objective.initial_params(), tol=tol, policy=COARSE_ONLY)
    assert result.converged and built  # under the coarse space
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


@pytest.mark.parametrize("kind", ["coarse-space", "diagonal"])
def test_float32_residuals_are_solved_in_float32_as_in_float64(kind):
    X, y = _sparse_problem()
    objective = _objective(X, y)
    _, gradient, hessp = objective.loss_gradient_hessp(_point(objective))
    if kind == "coarse-space":
        metric = coarse_space_preconditioner(objective, hessp)
    else:
        metric = DiagonalPreconditioner(hessp.diagonal())
    for layout in (np.ascontiguousarray, np.asfortranarray):
        single = metric.solve(layout(gradient.astype(np.float32)))
        assert single.dtype == np.float32
        np.testing.assert_allclose(
            single, metric.solve(layout(gradient)), rtol=1e-4, atol=1e-6 * np.abs(single).max()
        )
