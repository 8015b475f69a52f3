"""Dask fit on a real two-process LocalCluster, against the in-memory NumPy fit."""

import os
import signal

import dask.array as da
import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd
import pytest
from conftest import local_dask_client
from sklearn.datasets import make_classification

from softmaxreg import SoftmaxRegression, _dask

# dask, distributed and pandas are dev dependencies: a missing one fails the import loudly

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def client():
    yield from local_dask_client(2)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=12_000, n_features=10, n_informative=6, n_classes=4, random_state=0
    )
    return X, y


def _reference(X, y, **kwargs):
    return SoftmaxRegression(**kwargs).fit(X, y)


def test_dask_fit_equals_in_memory_fit(client, data):
    X, y = data
    reference = _reference(X, y, C=0.5)
    dX = da.from_array(X, chunks=(1_500, 10))
    dy = da.from_array(y, chunks=1_500)
    model = SoftmaxRegression(C=0.5).fit(dX, dy)  # default settings: exact
    assert model.converged_ and model.solver_ == "newton-cg"
    proba = model.predict_proba(dX)
    assert isinstance(proba, da.Array)  # lazy
    proba = proba.compute()
    assert np.max(np.abs(proba - reference.predict_proba(X))) <= 1e-6
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    labels = model.predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), reference.predict(X))
    assert isinstance(model.coef_, np.ndarray) and model.coef_.shape == (4, 10)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_dask_fit_with_weights_and_string_labels(client, data, solver):
    X, y = data
    labels = np.array(["a", "b", "c", "d"])[y]
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.2, 2.0, size=len(y))
    reference = SoftmaxRegression(tol=1e-9, class_weight={"b": 3.0}).fit(
        X, labels, sample_weight=weights
    )
    model = SoftmaxRegression(tol=1e-9, class_weight={"b": 3.0}, solver=solver).fit(
        da.from_array(X, chunks=(2_000, 10)),
        da.from_array(labels, chunks=2_000),
        sample_weight=da.from_array(weights, chunks=2_000),
    )
    proba = model.predict_proba(da.from_array(X, chunks=(2_000, 10))).compute()
    assert np.max(np.abs(proba - reference.predict_proba(X))) <= 1e-6
    np.testing.assert_array_equal(model.classes_, reference.classes_)


def test_dask_dataframe_input(client, data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    reference = SoftmaxRegression(tol=1e-9, class_weight="balanced").fit(frame, y)
    dframe = dd.from_pandas(frame, npartitions=5)
    dseries = dd.from_pandas(pd.Series(y), npartitions=5)
    model = SoftmaxRegression(tol=1e-9, class_weight="balanced").fit(dframe, dseries)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    proba = model.predict_proba(dframe)
    assert isinstance(proba, da.Array)
    assert np.max(np.abs(proba.compute() - reference.predict_proba(frame))) <= 1e-5


def test_only_parameter_sized_arrays_reach_the_client(client, data, monkeypatch):
    X, y = data
    dX = da.from_array(X, chunks=(1_500, 10))
    dy = da.from_array(y, chunks=1_500)
    seen = []
    original = _dask.DaskSoftmaxObjective._tree_sum

    def recording_tree_sum(self, futures):
        result = original(self, futures)
        parts = result if isinstance(result, tuple) else (result,)
        seen.extend(np.asarray(part).size for part in parts)
        return result

    monkeypatch.setattr(_dask.DaskSoftmaxObjective, "_tree_sum", recording_tree_sum)
    SoftmaxRegression(tol=1e-8).fit(dX, dy)
    K, p = 4, 11
    assert seen and max(seen) <= max(K * p, p * p)
    # the blocks live on the workers as futures, not on the client
    objective, _, _ = _dask.prepare_fit(SoftmaxRegression(), dX, dy, None)
    assert len(objective._X) == 8
    assert all(isinstance(f, distributed.Future) for f in objective._X)
    value, gradient, hessp = objective.loss_gradient_hessp(objective.initial_params())
    assert gradient.shape == (K, p) and hessp(gradient).shape == (K, p)
    assert objective.feature_gram().shape == (p, p)
    objective.release()


def test_worker_killed_mid_fit_gives_the_same_answer(client, data, monkeypatch):
    X, y = data
    reference = _reference(X, y)
    dX = da.from_array(X, chunks=(1_500, 10))
    dy = da.from_array(y, chunks=1_500)
    original = _dask.DaskSoftmaxObjective.loss_gradient_hessp
    calls = {"n": 0, "killed": None}

    def killing(self, params):
        calls["n"] += 1
        if calls["n"] == 3:  # after two Newton steps: kill the worker holding block data
            victim = sorted(client.scheduler_info()["workers"])[0]
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a fresh worker
            calls["killed"] = victim
        return original(self, params)

    monkeypatch.setattr(_dask.DaskSoftmaxObjective, "loss_gradient_hessp", killing)
    model = SoftmaxRegression(tol=1e-9).fit(dX, dy)
    assert calls["killed"] is not None and calls["n"] > 3
    assert model.converged_
    proba = model.predict_proba(dX).compute()
    assert np.max(np.abs(proba - reference.predict_proba(X))) <= 1e-6
    client.wait_for_workers(2, timeout=60)


def test_dask_bad_input(client, data):
    X, y = data
    bad = X.copy()
    bad[7_000, 3] = np.nan  # in a middle block
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().fit(da.from_array(bad, chunks=(1_500, 10)), da.from_array(y))
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxRegression().fit(
            da.from_array(X, chunks=(1_500, 10)), da.from_array(np.zeros(len(y), int))
        )
    with pytest.raises(ValueError, match="samples"):
        SoftmaxRegression().fit(da.from_array(X, chunks=(1_500, 10)), da.from_array(y[:-1]))
    with pytest.raises(ValueError, match="penalty"):
        SoftmaxRegression(penalty="l1", solver="lbfgs").fit(
            da.from_array(X, chunks=(1_500, 10)), da.from_array(y)
        )
    model = SoftmaxRegression().fit(da.from_array(X, chunks=(3_000, 10)), da.from_array(y))
    with pytest.raises(ValueError, match="features"):
        model.predict(da.from_array(X[:, :5]))


def test_dask_input_without_a_client_is_a_clear_error(data):
    X, y = data
    # get_client() raises ValueError when no client exists; simulate that situation
    import distributed as dist

    def no_client():
        raise ValueError("No clients found")

    original = dist.get_client
    dist.get_client = no_client
    try:
        with pytest.raises(ValueError, match="distributed.Client"):
            SoftmaxRegression().fit(da.from_array(X), da.from_array(y))
    finally:
        dist.get_client = original
