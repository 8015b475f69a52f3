"""BLAS threads during a fit (``_threads.fit_threads``): every BLAS other than NumPy's on one
thread, NumPy's too for small products, the caller's settings restored afterwards."""

import numpy as np
import pytest
import scipy
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxRegression, _threads, regularization_path
from softmaxreg._solvers import SOLVERS


def _threads_now():
    numpy_blas, other_blas = _threads.blas_controllers()
    return [c.num_threads for c in numpy_blas], [c.num_threads for c in other_blas]


@pytest.fixture
def two_threads():
    """Every BLAS at two threads (at most: a library built for one stays at one)."""
    with threadpool_limits(2, user_api="blas"):
        yield _threads_now()


def test_numpy_blas_is_told_apart_from_the_others():
    numpy_blas, other_blas = _threads.blas_controllers()
    assert numpy_blas, "no BLAS found for NumPy"
    assert not set(map(id, numpy_blas)) & set(map(id, other_blas))
    # against NumPy's and SciPy's own build records: the library taken for NumPy's is the
    # version NumPy was built with, and each other one the version SciPy was built with
    numpy_version = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["version"]
    assert numpy_version in {c.version for c in numpy_blas}
    scipy_version = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]["version"]
    assert all(c.version == scipy_version for c in other_blas)


@pytest.mark.parametrize(
    "X, K, numpy_limited",
    [
        (np.zeros((1000, 50)), 10, True),  # 5e5 multiply-adds a product: small
        (np.zeros((50000, 50)), 10, False),  # 2.5e7
        (sp.random(1000, 50, density=0.1, format="csr", random_state=0), 10, True),
    ],
    ids=["small-dense", "large-dense", "small-sparse"],
)
def test_fit_threads_limits_and_restores(two_threads, X, K, numpy_limited):
    numpy_before, other_before = two_threads
    assert (_threads.product_work(X, K) <= _threads.SMALL_PRODUCT) == numpy_limited
    with _threads.fit_threads(X, K):
        numpy_inside, other_inside = _threads_now()
        assert other_inside == [1] * len(other_before)
        assert numpy_inside == ([1] * len(numpy_before) if numpy_limited else numpy_before)
    assert _threads_now() == (numpy_before, other_before)


def test_fit_threads_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError, match="inside"):
        with _threads.fit_threads(np.zeros((10, 2)), 2):
            raise RuntimeError("inside")
    assert _threads_now() == two_threads


def test_estimator_and_path_solve_inside_the_limits(two_threads, monkeypatch):
    """The solver runs under the limits: NumPy's BLAS on one thread for this small problem,
    whatever the caller allowed; the caller's setting is back after the fit."""
    seen = []
    solve, penalties = SOLVERS["lbfgs"]

    def spy(objective, params0, **kwargs):
        seen.append(_threads_now())
        return solve(objective, params0, **kwargs)

    monkeypatch.setitem(SOLVERS, "lbfgs", (spy, penalties))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 3, 200)
    SoftmaxRegression(solver="lbfgs").fit(X, y)
    regularization_path(X, y, Cs=[0.1, 1.0], penalty="l2", solver="lbfgs")
    assert len(seen) == 3
    for numpy_inside, other_inside in seen:
        assert numpy_inside == [1] * len(numpy_inside)
        assert other_inside == [1] * len(other_inside)
    assert _threads_now() == two_threads
