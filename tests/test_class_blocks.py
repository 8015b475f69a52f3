"""The class-block preconditioner of Newton-CG: its blocks are the diagonal blocks of the
exact Hessian (formed independently, itself checked against finite differences in
test_loss), its solve inverts them on class-centred vectors, and Newton-CG under it reaches
the same optimum with fewer Hessian-vector products."""

import importlib

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers._preconditioners import ClassBlockPreconditioner
from softmaxreg._solvers._result import center_classes
from softmaxreg._solvers.newton_cg import _steihaug, choose_preconditioner, newton_cg


def _weighted_objective(C=1.0, dtype=np.float64):
    X, y = make_classification(
        400, 6, n_informative=4, n_redundant=0, n_classes=4, random_state=0
    )
    sample_weight = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    return SoftmaxObjective(X.astype(dtype), y, 4, sample_weight, True, C, Penalty("l2"))


def _digits_objective():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return SoftmaxObjective(X, y, 10, None, True, 1.0, Penalty("l2"))


def _point(objective, scale=0.3):
    params = np.random.default_rng(0).standard_normal(objective.shape) * scale
    return center_classes(params)


def test_class_blocks_are_the_diagonal_blocks_of_the_hessian():
    objective = _weighted_objective()
    params = _point(objective)
    _, _, hessp = objective.loss_gradient_hessp(params)
    K, p = objective.shape
    exact = objective.hessian(params).reshape(K, p, K, p)
    blocks, n_rows = hessp.class_blocks(0.0)
    assert n_rows == K * objective.X.shape[0]
    for k in range(K):
        np.testing.assert_allclose(blocks[k], exact[k, :, k, :], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_class_blocks_of_float32_products_are_those_of_the_hessian(fit_intercept):
    # float64 X: the products run on a float32 copy stored transposed, and the blocks are
    # gathered from the rows of X itself
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:600]
    objective = SoftmaxObjective(X, y[:600], 10, None, fit_intercept, 1.0, Penalty("l2"))
    params = _point(objective, scale=0.1)
    _, _, hessp = objective.loss_gradient_hessp(params)
    hessp.float32_products()
    assert hessp._products.X.dtype == np.float32
    K, p = objective.shape
    exact = objective.hessian(params).reshape(K, p, K, p)
    blocks, n_rows = hessp.class_blocks(0.0)
    assert n_rows == K * X.shape[0]
    for k in range(K):
        scale = np.abs(exact[k, :, k, :]).max()
        np.testing.assert_allclose(blocks[k], exact[k, :, k, :], rtol=1e-4, atol=1e-5 * scale)


def test_a_threshold_leaves_out_only_rows_of_small_weight():
    objective = _weighted_objective()
    params = _point(objective, scale=2.0)  # confident predictions: many small weights
    _, _, hessp = objective.loss_gradient_hessp(params)
    kept, n_rows = hessp.class_blocks(0.05)
    # written out in the test: rows whose s_i p_ik (1 - p_ik) exceeds 5% of the class's
    # largest, over the total weight, plus the ridge on the coefficients
    X, sample_weight = objective.X, objective.sample_weight
    augmented = np.hstack([X, np.ones((X.shape[0], 1))])
    proba = scipy_softmax(augmented @ params.T, axis=1)
    weights = sample_weight[:, None] * proba * (1 - proba)
    expected_rows = 0
    for k in range(objective.shape[0]):
        rows = weights[:, k] > 0.05 * weights[:, k].max()
        expected_rows += rows.sum()
        block = (augmented[rows].T * weights[rows, k]) @ augmented[rows] / sample_weight.sum()
        block[np.arange(X.shape[1]), np.arange(X.shape[1])] += objective.l2_strength
        np.testing.assert_allclose(kept[k], block, rtol=1e-10, atol=1e-14)
    assert n_rows == expected_rows < 0.8 * weights.size


def test_solve_inverts_the_blocks_on_centred_vectors():
    objective = _weighted_objective()
    _, _, hessp = objective.loss_gradient_hessp(_point(objective))
    blocks, _ = hessp.class_blocks(0.0)
    expected_blocks = blocks.copy()
    metric = ClassBlockPreconditioner(blocks)
    rng = np.random.default_rng(2)
    residual = center_classes(rng.standard_normal(objective.shape))
    other = center_classes(rng.standard_normal(objective.shape))
    # the ridge, 1e-10 of each diagonal entry in float64, moves the solution by ~1e-9
    pairs = zip(expected_blocks, residual, strict=True)
    direct = np.stack([np.linalg.solve(block, part) for block, part in pairs])
    np.testing.assert_allclose(metric.solve(residual), center_classes(direct), rtol=1e-7)
    # symmetric on centred vectors (CG needs it) and the metric's norm is the block form
    assert np.vdot(other, metric.solve(residual)) == pytest.approx(
        np.vdot(residual, metric.solve(other)), rel=1e-10
    )
    quadratic = sum(r @ b @ r for r, b in zip(residual, expected_blocks, strict=True))
    assert metric.norm(residual) == pytest.approx(np.sqrt(quadratic), rel=1e-9)


def test_badly_scaled_and_singular_blocks_are_still_factored():
    # an all-zero feature left unpenalised gives singular blocks; features of size 1e4 next
    # to the intercept's 1 give blocks whose diagonal spans 1e8: the ridge is relative to
    # each entry, so the intercept's curvature survives
    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    X = np.hstack([X * 1e4, np.zeros((300, 1))]).astype(np.float32)
    objective = SoftmaxObjective(X, y, 3, None, True, np.inf, Penalty(None))
    _, _, hessp = objective.loss_gradient_hessp(_point(objective, 1e-4))
    blocks, _ = hessp.class_blocks(0.0)
    intercept_block = blocks[:, -1, -1].copy()
    metric = ClassBlockPreconditioner(blocks, float(np.finfo(np.float32).eps))
    unit = np.zeros(objective.shape)
    unit[:, -1] = [1.0, -0.5, -0.5]  # a centred change of the intercepts
    solved = metric.solve(unit)
    assert np.all(np.isfinite(solved))
    # the intercepts' own curvature sets the step, not a ridge sized by the 1e8 entries
    assert abs(solved[0, -1]) > 0.1 / intercept_block.max()


def test_dense_data_with_p_at_most_8k_gets_the_class_blocks():
    assert choose_preconditioner(_digits_objective()) == "class-block"
    X, y = make_classification(500, 100, n_informative=10, n_classes=5, random_state=0)
    wide = SoftmaxObjective(X, y, 5, None, True, 1.0, Penalty("l2"))
    assert choose_preconditioner(wide) == "kronecker"  # p = 101 > 8 K


def _record(monkeypatch, name, log):
    from softmaxreg._objective import ScaledHessian

    original = getattr(ScaledHessian, name)

    def recording(self, threshold):
        result = original(self, threshold)
        log.append(result[1] if isinstance(result, tuple) else result)
        return result

    monkeypatch.setattr(ScaledHessian, name, recording)


@pytest.mark.parametrize("case", ["cheap", "costly"])
def test_beyond_small_data_the_blocks_are_built_only_when_cheap(monkeypatch, case):
    # 6,000 rows: more than the sampled Hessian takes, so the blocks are priced. With p = 6
    # and K = 20 a row costs p^2 = 36 against a pass's 2 K p = 240 per row: cheap. With
    # p = 61 and K = 8 every row costs 3721 against 976: even a third of the rows per class
    # exceeds CLASS_BLOCK_MAX_PASSES = 6 passes.
    module = importlib.import_module("softmaxreg._solvers.newton_cg")
    d, K = (5, 20) if case == "cheap" else (60, 8)
    X, y = make_classification(
        6000, d, n_informative=d, n_redundant=0, n_classes=K, n_clusters_per_class=1,
        class_sep=0.5, random_state=0,
    )
    objective = SoftmaxObjective(X, y, K, None, True, 1.0, Penalty("l2"))
    p = objective.shape[1]
    assert not module._small_data(6000, K, p)
    priced, built = [], []
    _record(monkeypatch, "class_block_rows", priced)
    _record(monkeypatch, "class_blocks", built)
    monkeypatch.setattr(module, "CLASS_BLOCK_AFTER", 0)  # price them at every step
    result = newton_cg(objective, objective.initial_params(), tol=1e-8)
    assert result.converged and priced
    cost = [rows * p / (2.0 * 6000 * K) for rows in priced]
    if case == "cheap":
        assert built and cost[0] <= module.CLASS_BLOCK_MAX_PASSES
    else:
        assert not built and min(cost) > module.CLASS_BLOCK_MAX_PASSES


@pytest.mark.parametrize("kind", ["dense", "weighted", "float32"])
def test_newton_cg_under_the_class_blocks_reaches_the_same_optimum(kind):
    if kind == "dense":
        objective = _digits_objective()
    else:
        dtype = np.float32 if kind == "float32" else np.float64
        objective = _weighted_objective(C=10.0, dtype=dtype)
    runs = {
        preconditioner: newton_cg(
            objective, objective.initial_params(), tol=1e-9 if kind != "float32" else 1e-6,
            preconditioner=preconditioner,
        )
        for preconditioner in ("class-block", "weighted-kronecker")
    }
    blocks, kronecker = runs["class-block"], runs["weighted-kronecker"]
    assert blocks.converged and kronecker.converged
    # float32 data: the objective itself is evaluated in float32
    rel = 1e-6 if kind == "float32" else 1e-9
    assert blocks.objective == pytest.approx(kronecker.objective, rel=rel)
    if kind != "float32":
        # certified by the gradient of the scaled objective, written out in the test
        X = np.asarray(objective.X, dtype=np.float64)
        augmented = np.hstack([X, np.ones((X.shape[0], 1))])
        residual = scipy_softmax(augmented @ blocks.params.T, axis=1)
        residual[np.arange(len(objective.y)), objective.y] -= 1
        weight = objective.sample_weight
        weight = np.ones(len(objective.y)) if weight is None else weight
        gradient = (residual * weight[:, None]).T @ augmented / weight.sum()
        gradient[:, :-1] += objective.l2_strength * blocks.params[:, :-1]
        assert np.abs(gradient).max() <= 1e-9
    if kind == "dense":
        # digits: the blocks take over after the first slow CG, and need far fewer products
        # (their formation is counted in the pass-equivalents)
        assert blocks.n_passes < 0.8 * kronecker.n_passes


def test_cg_under_the_class_blocks_also_stops_in_their_metric():
    # at digits' second Newton iterate, ||r|| <= eta ||g|| is met after two CG steps whose
    # step leaves max|gradient| at 2.3e-2 (the exact Newton step: 2.1e-3); the residual must
    # also have shrunk by eta in the preconditioner's metric
    objective = _digits_objective()
    params = newton_cg(
        objective, objective.initial_params(), tol=1e-9, max_iter=2,
        preconditioner="weighted-kronecker",
    ).params
    value, gradient, hessp = objective.loss_gradient_hessp(params)
    metric = ClassBlockPreconditioner(hessp.class_blocks(0.01)[0])
    forcing = min(0.1, np.sqrt(np.linalg.norm(gradient)))
    step, _, _, _, on_boundary = _steihaug(gradient, hessp, metric, 1e6, forcing, 650)
    assert not on_boundary
    residual = gradient + hessp(step)
    assert np.linalg.norm(residual) <= forcing * np.linalg.norm(gradient) * (1 + 1e-9)
    assert np.vdot(residual, metric.solve(residual)) <= forcing**2 * np.vdot(
        gradient, metric.solve(gradient)
    ) * (1 + 1e-9)
    # and the Newton step it gives lowers the gradient as the exact one does
    _, new_gradient, _ = objective.loss_gradient_hessp(center_classes(params + step))
    assert np.abs(new_gradient).max() < 0.5 * np.abs(gradient).max()


def test_the_ridge_grows_until_the_factorisation_succeeds():
    from softmaxreg._solvers._preconditioners import with_growing_ridge

    tried = []

    def factorise(relative):
        tried.append(relative)
        # a float32-formed matrix whose smallest eigenvalue is -1e-9 of its largest
        return np.linalg.cholesky(np.diag([1.0, -1e-9 + relative]))

    factor = with_growing_ridge(factorise, 1e-12)
    assert tried == pytest.approx([1e-12, 1e-9, 1e-6]) and factor[1, 1] > 0
    tried.clear()
    with pytest.raises(np.linalg.LinAlgError):
        with_growing_ridge(factorise, 1e-15)  # 1e-15, 1e-12, 1e-9: still indefinite
    assert len(tried) == 3


def test_the_first_blocks_wait_until_cg_costs_their_share(monkeypatch):
    # digits: a block row costs p^2 = 4,225 against a pass's 2 K p = 1,300 per row, so the
    # first blocks cost many products; they are built only after a Newton step whose CG
    # used more than CLASS_BLOCK_SHARE of their price (and more than CLASS_BLOCK_AFTER)
    from softmaxreg._objective import ScaledHessian

    module = importlib.import_module("softmaxreg._solvers.newton_cg")
    objective = _digits_objective()
    n, (K, p) = objective.X.shape[0], objective.shape
    events = []  # ("cg", products), ("price", products), ("build", rows) in order
    steihaug = module._steihaug
    rows_of, blocks_of = ScaledHessian.class_block_rows, ScaledHessian.class_blocks

    def recording_steihaug(*args, **kwargs):
        result = steihaug(*args, **kwargs)
        events.append(("cg", result[3]))
        return result

    def recording_rows(self, threshold):
        rows = rows_of(self, threshold)
        events.append(("price", rows * p / (2.0 * n * K) / 0.75))
        return rows

    def recording_blocks(self, threshold):
        events.append(("build", None))
        return blocks_of(self, threshold)

    monkeypatch.setattr(module, "_steihaug", recording_steihaug)
    monkeypatch.setattr(ScaledHessian, "class_block_rows", recording_rows)
    monkeypatch.setattr(ScaledHessian, "class_blocks", recording_blocks)
    result = newton_cg(objective, objective.initial_params(), tol=1e-6)
    assert result.converged
    kinds = [kind for kind, _ in events]
    first_build = kinds.index("build")
    # every pricing before it followed a step with more than CLASS_BLOCK_AFTER products
    # but not more than the share of the price; the one it follows, one with more
    prices = [i for i in range(first_build) if kinds[i] == "price"]
    assert len(prices) >= 2 and prices[-1] == first_build - 1  # digits waits a step
    for i in prices:
        products, price = events[i - 1][1], events[i][1]
        assert events[i - 1][0] == "cg" and products > module.CLASS_BLOCK_AFTER
        if i == prices[-1]:
            assert products > module.CLASS_BLOCK_SHARE * price
        else:
            assert products <= module.CLASS_BLOCK_SHARE * price
