"""Memory layouts and per-fit caches of the Newton-CG solver.

Sparse problems keep [K, p] arrays in Fortran order (the layout of the sparse products), and
wide sparse X is read from a CSC copy where it fits: speed choices, and these tests check
that they change no value.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from softmaxreg import SoftmaxRegression, _loss
from softmaxreg._objective import PARAMETER_BYTES, SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers._result import center_classes, class_mean
from softmaxreg._solvers._sparse_preconditioner import coarse_space_preconditioner


def _problem(n=400, d=30, K=4, density=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if density is not None:
        X = sp.random(n, d, density=density, format="csr", random_state=seed)
        X.data = np.abs(X.data)
    y = rng.integers(0, K, n)
    return X, y


def _objective(X, y, K, C=1.0, sample_weight=None, fit_intercept=True):
    return SoftmaxObjective(
        X, y, K, sample_weight, fit_intercept, C, Penalty.from_params("l2", None)
    )


@pytest.mark.parametrize("layouts", ["CC", "FF", "CF", "FC"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_axpy_updates_in_place_in_every_layout(layouts, dtype):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 4, 9)).astype(dtype)
    x = np.asfortranarray(x) if layouts[0] == "F" else x
    y = np.asfortranarray(y) if layouts[1] == "F" else y
    expected = y + dtype(0.7) * x
    _loss.axpy(0.7, x, y)  # in place: y itself holds the result
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["CC", "FF", "CF", "FC"])
def test_inner_equals_vdot_in_every_layout(layout):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5, 7))
    a = np.asfortranarray(a) if layout[0] == "F" else a
    b = np.asfortranarray(b) if layout[1] == "F" else b
    assert _loss.inner(a, b) == pytest.approx(float(np.vdot(np.array(a), np.array(b))), rel=1e-14)
    # a sliced (non-contiguous) view, as the coefficients of [K, p] parameters are
    assert _loss.inner(a[:, :-1], b[:, :-1]) == pytest.approx(
        float(np.sum(a[:, :-1] * b[:, :-1])), rel=1e-14
    )


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_class_mean_and_centring_keep_values_and_layout(order, dtype):
    params = np.asarray(np.random.default_rng(2).standard_normal((6, 9)), dtype=dtype, order=order)
    np.testing.assert_allclose(class_mean(params), params.mean(axis=0), rtol=1e-5, atol=1e-6)
    centred = center_classes(params)
    assert centred.dtype == dtype
    assert centred.flags.f_contiguous if order == "F" else centred.flags.c_contiguous
    np.testing.assert_allclose(centred.sum(axis=0), 0.0, atol=1e-5)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_feature_gram_matches_its_definition(fit_intercept, weighted, dtype):
    X, _ = _problem(n=300, d=8)
    X = X.astype(dtype)
    weight = np.random.default_rng(3).random(300) if weighted else None
    design = np.hstack([X, np.ones((300, 1), dtype)]) if fit_intercept else X
    design = design.astype(np.float64)
    expected = design.T @ (design * (1.0 if weight is None else weight[:, None]))
    gram = _loss.feature_gram(X, weight, fit_intercept, chunk_size=128)  # several chunks
    np.testing.assert_allclose(gram, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # negative weights cannot be square-rooted: the general branch gives the same sum
    signed = np.linspace(-1.0, 1.0, 300)
    expected = design.T @ (design * signed[:, None])
    np.testing.assert_allclose(
        _loss.feature_gram(X, signed, fit_intercept),
        expected,
        rtol=1e-5 if dtype == np.float32 else 1e-12,
        atol=1e-4 if dtype == np.float32 else 1e-10,
    )


def test_sparse_gradient_is_fortran_ordered_and_equals_the_dense_one():
    X, y = _problem(density=0.2)
    params = np.random.default_rng(6).standard_normal((4, X.shape[1] + 1))
    value, gradient = _loss.loss_gradient(X, y, params)
    dense_value, dense_gradient = _loss.loss_gradient(X.toarray(), y, params)
    assert gradient.flags.f_contiguous
    assert value == pytest.approx(dense_value, rel=1e-13)
    np.testing.assert_allclose(gradient, dense_gradient, rtol=1e-12, atol=1e-12)
    _, _, no_intercept = _loss.loss_gradient_hessp(X, y, params[:, :-1], fit_intercept=False)
    direction = np.asfortranarray(params[:, :-1])
    product = no_intercept(direction)
    dense = _loss.loss_gradient_hessp(X.toarray(), y, params[:, :-1], fit_intercept=False)[2]
    np.testing.assert_allclose(product, dense(direction), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_transpose_product_writes_scipys_product_into_the_buffer(
    layout, dtype, index_dtype
):
    X = sp.random(40, 70, density=0.1, format=layout, random_state=3, dtype=dtype)
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    residual = np.random.default_rng(4).standard_normal((40, 5)).astype(dtype)
    buffer = np.full((71, 5), 7.0, dtype=dtype)  # accumulates: out += X^T R
    assert _loss._sparse_transpose_product_into(X, residual, buffer[:-1])
    expected = np.asarray(X.T @ residual) + 7.0
    np.testing.assert_allclose(buffer[:-1], expected, rtol=1e-5 if dtype == np.float32 else 1e-13)
    assert np.all(buffer[-1] == 7.0)
    # and the gradient built on it: Fortran-ordered, the public product's values
    gradient = _loss._residual_to_gradient(X, residual, fit_intercept=True)
    assert gradient.flags.f_contiguous and gradient.dtype == dtype
    np.testing.assert_allclose(gradient[:, :-1], expected.T - 7.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gradient[:, -1], residual.sum(axis=0), rtol=1e-5)


def test_sparse_transpose_product_declines_what_its_kernel_cannot_take():
    X = sp.random(30, 20, density=0.2, format="csr", random_state=5)
    residual = np.ones((30, 3))
    untouched = np.zeros((20, 3))
    # mixed dtypes, a non-contiguous output, a wrong shape, another sparse format
    assert not _loss._sparse_transpose_product_into(X, residual.astype(np.float32), untouched)
    assert not _loss._sparse_transpose_product_into(X, residual, np.zeros((3, 20)).T)
    assert not _loss._sparse_transpose_product_into(X, residual, np.zeros((21, 3)))
    assert not _loss._sparse_transpose_product_into(X.tocoo(), residual, untouched)
    assert np.all(untouched == 0)
    # and the gradient then comes from the public product, with the same values
    mixed = _loss._residual_to_gradient(X, residual.astype(np.float32), fit_intercept=True)
    np.testing.assert_allclose(mixed[:, :-1], np.asarray(X.T @ residual).T, rtol=1e-6)


def test_coarse_space_solve_is_the_same_for_both_layouts():
    X, y = _problem(density=0.2)
    objective = _objective(X, y, 4)
    params = objective.initial_params()
    _, gradient, hessp = objective.loss_gradient_hessp(params)
    preconditioner = coarse_space_preconditioner(objective, hessp)
    from_c = preconditioner.solve(np.ascontiguousarray(gradient))
    from_f = preconditioner.solve(np.asfortranarray(gradient))
    np.testing.assert_allclose(from_c, from_f, rtol=1e-13, atol=1e-15)


def test_sparse_fit_returns_c_ordered_coefficients_equal_to_the_dense_fit():
    X, y = _problem(density=0.2)
    sparse_fit = SoftmaxRegression(C=1.0, solver="newton-cg", tol=1e-8).fit(X, y)
    dense_fit = SoftmaxRegression(C=1.0, solver="newton-cg", tol=1e-8).fit(X.toarray(), y)
    assert sparse_fit.coef_.flags.c_contiguous
    np.testing.assert_allclose(sparse_fit.coef_, dense_fit.coef_, atol=1e-6)
    np.testing.assert_allclose(sparse_fit.intercept_, dense_fit.intercept_, atol=1e-6)


@pytest.mark.parametrize(
    "n, d, density, layout",
    [(100, 150, 0.5, "csc"), (60, 150, 0.1, "csr"), (150, 60, 0.1, "csr")],
    ids=["wide-copy-fits", "wide-copy-too-large", "narrow"],
)
def test_sparse_passes_read_x_in_the_layout_whose_random_side_is_smaller(n, d, density, layout):
    """Wide sparse X (d > n) is read from a CSC copy where the fit stays within twice X with
    it, otherwise (and narrow X) as it is (CSR). Values equal the dense ones."""
    X, y = _problem(n=n, d=d, density=density)
    weight = np.random.default_rng(4).uniform(0.5, 2.0, n)
    objective = _objective(X, y, 4, sample_weight=weight)
    # the rule: newton-cg's parameter-sized arrays within X's size
    fits = PARAMETER_BYTES * objective.shape[0] * objective.shape[1] <= (
        X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    )
    if d > n:
        assert fits == (layout == "csc")
    design = objective.pass_design()
    assert design.format == layout
    assert (design is X) == (layout == "csr")
    dense = _objective(X.toarray(), y, 4, sample_weight=weight)
    rng = np.random.default_rng(5)
    params = np.asfortranarray(rng.standard_normal(objective.shape) * 0.3)
    value, gradient, hessp = objective.loss_gradient_hessp(params)
    dense_value, dense_gradient, dense_hessp = dense.loss_gradient_hessp(params)
    assert value == pytest.approx(dense_value, rel=1e-13)
    np.testing.assert_allclose(gradient, dense_gradient, rtol=1e-12, atol=1e-13)
    direction = np.asfortranarray(rng.standard_normal(objective.shape))
    np.testing.assert_allclose(hessp(direction), dense_hessp(direction), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(hessp.diagonal(), dense_hessp.diagonal(), rtol=1e-12, atol=1e-13)
    sparse_fit = SoftmaxRegression(C=1.0, tol=1e-8).fit(X, y, sample_weight=weight)
    dense_fit = SoftmaxRegression(C=1.0, tol=1e-8).fit(X.toarray(), y, sample_weight=weight)
    np.testing.assert_allclose(sparse_fit.coef_, dense_fit.coef_, atol=1e-6)


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_squared_design_product_by_chunks_equals_the_squared_matrix_product(
    monkeypatch, layout, dtype, fit_intercept
):
    """Chunks of 7 nonzeros: lines split across chunks, lines longer than a chunk and empty
    lines all occur; the result is SciPy's product with the squared matrix."""
    monkeypatch.setattr(_loss, "_SQUARE_CHUNK_NONZEROS", 7)
    rng = np.random.default_rng(3)
    dense = sp.random(52, 40, density=0.15, random_state=4, dtype=dtype).toarray()
    dense[50:] = 0.0  # empty rows
    dense[:, 5] = 0.0  # an empty column
    dense[3] = rng.random(40)  # a row longer than a chunk
    dense[:, 7] = rng.random(52)  # a column longer than a chunk
    dense[3, 5] = 0.0
    X = sp.csr_matrix(dense).asformat(layout)
    weights = rng.random((X.shape[0], 3)).astype(dtype)
    result = _loss.squared_design_product(X, weights, fit_intercept)
    expected = np.asarray(X.multiply(X).T @ weights).T
    if fit_intercept:
        expected = np.hstack([expected, weights.sum(axis=0)[:, None]])
    assert result.dtype == dtype and result.flags.f_contiguous
    assert result.shape == (3, 40 + int(fit_intercept))
    np.testing.assert_allclose(result, expected, rtol=1e-5 if dtype == np.float32 else 1e-13)


def test_sparse_hessian_diagonal_is_the_diagonal_of_the_exact_hessian():
    X, y = _problem(n=80, d=12, K=3, density=0.3)
    params = np.random.default_rng(1).standard_normal((3, 13))
    for layout in (X, X.tocsc()):
        _, _, hessp = _loss.loss_gradient_hessp(layout, y, params)
        exact = _loss.hessian(X.toarray(), y, params)
        np.testing.assert_allclose(hessp.diagonal().ravel(), np.diag(exact), rtol=1e-12)
