"""Peak memory of the default fit, measured with tracemalloc (which sees NumPy's and SciPy's
allocations): within twice the size of X, plus O(n K) arrays, plus the solver's own arrays
(a dozen parameter-sized ones and, up to 2,000 columns, the Kronecker factor's p x p), plus,
for float32 X, the float64 copy that the fit finishes on.

The benchmark reports the same measure on its problems (``benchmarks/run.py``); these tests
keep it from growing unnoticed on small versions of their shapes.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from softmaxreg import SoftmaxRegression

# the constant of O(n K): the probabilities of the current and of the candidate point, the
# scores of a pass, and the preconditioner's per-sample arrays (at most ~4 n x K arrays)
N_BY_K_ARRAYS = 4
# Newton-CG's parameter-sized arrays [K, p]: the parameters, the gradient, the candidate and
# its gradient, CG's step, residual, direction, preconditioned residual and product, and the
# preconditioner's diagonal and coarse space (measured 12.7 on the wide case below).
K_BY_P_ARRAYS = 13
# The Kronecker preconditioner's feature second moment and its eigenvectors [p, p].
P_BY_P_ARRAYS = 2


def _nbytes(X) -> int:
    if sp.issparse(X):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def _problem(n, d, K, density=None, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    if density is None:
        X = rng.standard_normal((n, d)).astype(dtype)
    else:  # one column in each of density * d bands of columns (scipy.sparse.random takes
        # seconds at this size): sorted, distinct, density * d nonzeros a row
        per_row = int(density * d)
        band = d // per_row
        columns = rng.integers(0, band, (n, per_row)) + band * np.arange(per_row)
        indptr = np.arange(0, n * per_row + 1, per_row)
        values = rng.random(n * per_row).astype(dtype)
        X = sp.csr_matrix((values, columns.ravel(), indptr), shape=(n, d))
    coef = rng.standard_normal((d, K)) * 3.0 / np.sqrt(d * (density or 1.0))
    y = np.argmax(X @ coef + rng.gumbel(size=(n, K)), axis=1)
    return X, y


def _solver_arrays(d, K) -> int:
    """Bytes of the solver's own arrays: parameter-sized ones, and the Kronecker factor's
    where the preconditioner forms it (up to 2,000 columns)."""
    p = d + 1
    return 8 * (K_BY_P_ARRAYS * K * p + (P_BY_P_ARRAYS * p * p if p <= 2000 else 0))


def _peak_of_fit(X, y) -> int:
    tracemalloc.start()
    try:
        SoftmaxRegression().fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "shape",
    [
        dict(n=20000, d=50, K=5),
        dict(n=20000, d=50, K=5, dtype=np.float32),
        dict(n=5000, d=20, K=30),
        dict(n=20000, d=500, K=5, density=0.02),
        dict(n=2000, d=20000, K=10, density=0.01),
        dict(n=2000, d=5000, K=20, density=0.03),
    ],
    ids=[
        "dense",
        "dense-float32",
        "dense-many-classes",
        "sparse-narrow",
        "sparse-wide",
        "sparse-wide-text-shaped",
    ],
)
def test_peak_memory_is_within_twice_x_plus_order_n_k_plus_the_solvers_arrays(shape):
    X, y = _problem(**shape)
    (n, d), K = X.shape, shape["K"]
    bound = 2 * _nbytes(X) + N_BY_K_ARRAYS * n * K * 8 + _solver_arrays(d, K)
    if X.dtype == np.float32:  # the float64 copy the fit finishes on (``_solvers.solve``)
        bound += 2 * _nbytes(X)
    peak = _peak_of_fit(X, y)
    assert peak <= bound, f"peak {peak / 1e6:.2f} MB above {bound / 1e6:.2f} MB"


def test_peak_memory_on_wide_sparse_x_adds_a_few_parameter_arrays():
    X, y = _problem(n=1000, d=50000, K=20, density=0.001)
    (n, d), K = X.shape, 20
    bound = 2 * _nbytes(X) + N_BY_K_ARRAYS * n * K * 8 + _solver_arrays(d, K)
    peak = _peak_of_fit(X, y)
    assert peak <= bound, f"peak {peak / 1e6:.2f} MB above {bound / 1e6:.2f} MB"
