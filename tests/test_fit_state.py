"""Fitted state: a rejected call changes nothing, concurrent fits never mix their results,
and the BLAS thread limits survive concurrent fits.

References: a deep copy of every attribute before the call (compared bit for bit after it),
sequential fits of the same data, and threadpoolctl's own reading of the BLAS thread counts.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxRegression, SoftmaxRegressionCV, _threads
from softmaxreg.tabular import TabularModel


def snapshot(estimator) -> dict:
    return copy.deepcopy(vars(estimator))


def assert_same_state(before: dict, estimator) -> None:
    after = vars(estimator)
    assert sorted(after) == sorted(before)
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[name], value, err_msg=name)
            assert after[name].dtype == value.dtype, name
        elif hasattr(value, "__dataclass_fields__"):  # the AdamState of partial_fit
            for field in value.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(after[name], field), getattr(value, field))
        else:
            assert after[name] == value, name


@pytest.fixture(scope="module")
def iris_frame():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


# ------------------------------------------------------------------ rejected calls
def _rejected_fits(X):
    """(X, y, sample_weight, match) of fits that must be refused, each after
    scikit-learn's validate_data would already have reset n_features_in_ or the names."""
    wider = pd.DataFrame(np.ones((6, 5)), columns=list("vwxyz"))
    with_nan = wider.copy()
    with_nan.iloc[0, 0] = np.nan
    return [
        (wider, np.zeros(6), None, "at least 2 classes"),
        (with_nan, np.arange(6) % 2, None, "NaN"),
        (wider, np.arange(6) % 2, -np.ones(6), "negative"),
        (wider.to_numpy(), np.linspace(0, 1, 6), None, "continuous"),
        (wider, np.array(["a", None, "b", "a", "b", "a"], dtype=object), None, "None"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_rejected_fit_leaves_every_fitted_attribute_unchanged(iris_frame, case):
    X, y = iris_frame
    model = SoftmaxRegression().fit(X, y)
    before = snapshot(model)
    X_bad, y_bad, weight, match = _rejected_fits(X)[case]
    with pytest.raises(ValueError, match=match):
        model.fit(X_bad, y_bad, sample_weight=weight)
    assert_same_state(before, model)


def test_rejected_fit_of_an_unfitted_model_leaves_it_unfitted():
    model = SoftmaxRegression()
    with pytest.raises(ValueError):
        model.fit(np.ones((4, 3)), np.zeros(4))
    assert not [name for name in vars(model) if name.endswith("_")]


def test_rejected_cv_and_tabular_fits_leave_state_unchanged(iris_frame):
    X, y = iris_frame
    cv = SoftmaxRegressionCV(Cs=3, cv=3).fit(X, y)
    before = snapshot(cv)
    with pytest.raises(ValueError):
        cv.fit(pd.DataFrame(np.ones((6, 2)), columns=["p", "q"]), np.zeros(6))
    assert_same_state(before, cv)
    frame = X.assign(kind=np.where(y == 0, "a", "b"))
    tabular = TabularModel().fit(frame, y)
    before = copy.deepcopy(tabular.preprocessor_.feature_names_out)
    with pytest.raises(ValueError):
        tabular.fit(frame.iloc[:, :2], np.zeros(len(frame)))
    assert tabular.preprocessor_.feature_names_out == before
    assert tabular.n_features_in_ == 5


def test_partial_fit_rejects_a_batch_that_makes_its_state_non_finite():
    """A batch near 1e160 has a finite gradient whose square overflows Adam's second
    moment: it is rejected, nothing changes, and later batches still move the model."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = SoftmaxRegression()
    for start in range(0, 150, 30):
        model.partial_fit(X[start : start + 30], y[start : start + 30], classes=[0, 1, 2])
    before = snapshot(model)
    with pytest.raises(ValueError, match="non-finite.*unchanged"):
        model.partial_fit(X[::5] * 1e160, y[::5])  # every class: a gradient of ~1e159
    assert_same_state(before, model)
    model.partial_fit(X[30:60], y[30:60])
    assert model.n_iter_ == before["n_iter_"] + 1
    assert np.all(np.isfinite(model.partial_fit_state_.second_moment))
    assert not np.array_equal(model.coef_, before["coef_"])


def test_rejected_partial_fit_leaves_state_unchanged():
    X, y = load_iris(return_X_y=True)
    model = SoftmaxRegression().partial_fit(X[::2], y[::2])
    before = snapshot(model)
    with pytest.raises(ValueError, match="not among"):
        model.partial_fit(X[:5], np.array([0, 1, 7, 1, 0]))
    with pytest.raises(ValueError):
        model.partial_fit(np.full((5, 4), np.nan), y[:5])
    with pytest.raises(ValueError, match="4 features"):
        model.partial_fit(X[:5, :3], y[:5])
    assert_same_state(before, model)


# ------------------------------------------------------------------ concurrent fits
def test_concurrent_fits_on_one_estimator_never_mix_state():
    """Two threads fit one estimator on data of different widths, 30 times: every time the
    published state is one complete fit (coefficients, width, names of the same fit),
    equal to a sequential fit of that data."""
    X_iris, y_iris = load_iris(return_X_y=True, as_frame=True)
    X_wine, y_wine = load_wine(return_X_y=True, as_frame=True)
    X_wine = (X_wine - X_wine.mean()) / X_wine.std()
    references = {
        4: SoftmaxRegression().fit(X_iris, y_iris),
        13: SoftmaxRegression().fit(X_wine, y_wine),
    }
    for _ in range(30):
        model = SoftmaxRegression()
        barrier = threading.Barrier(2)

        def fit(X, y, model=model, barrier=barrier):
            barrier.wait()
            return model.fit(X, y)

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(fit, X_iris, y_iris), pool.submit(fit, X_wine, y_wine)]
            for future in futures:
                assert future.result() is model
        width = model.n_features_in_
        reference = references[width]
        assert model.coef_.shape == reference.coef_.shape
        assert list(model.feature_names_in_) == list(reference.feature_names_in_)
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-6, atol=1e-8)


class _FakeController:
    """A BLAS controller that records its thread count (threadpoolctl's interface)."""

    def __init__(self, threads: int):
        self.num_threads = threads

    def set_num_threads(self, threads: int) -> None:
        self.num_threads = threads


def test_thread_limit_is_restored_after_interleaved_fits(monkeypatch):
    """The interleaving that left a process on one thread: fit A limits, fit B starts,
    A ends, B ends. The user's setting comes back once the last fit ends, not before."""
    numpy_blas, other_blas = [_FakeController(4)], [_FakeController(3)]
    monkeypatch.setattr(_threads, "blas_controllers", lambda: (numpy_blas, other_blas))
    small = np.zeros((10, 2))
    first, second = _threads.fit_threads(small, 2), _threads.fit_threads(small, 2)
    first.__enter__()
    assert (numpy_blas[0].num_threads, other_blas[0].num_threads) == (1, 1)
    second.__enter__()
    first.__exit__(None, None, None)
    assert (numpy_blas[0].num_threads, other_blas[0].num_threads) == (1, 1)  # B still runs
    second.__exit__(None, None, None)
    assert (numpy_blas[0].num_threads, other_blas[0].num_threads) == (4, 3)


def test_real_blas_settings_survive_many_concurrent_fits():
    X, y = load_iris(return_X_y=True)
    with threadpool_limits(2, user_api="blas"):
        numpy_blas, other_blas = _threads.blas_controllers()
        before = [c.num_threads for c in numpy_blas + other_blas]
        with ThreadPoolExecutor(6) as pool:
            fits = [pool.submit(SoftmaxRegression(C=c).fit, X, y) for c in np.logspace(-2, 2, 24)]
            for fit in fits:
                fit.result()
        assert [c.num_threads for c in numpy_blas + other_blas] == before
