"""One check of labels and weights for every backend: the Dask and array API fits refuse what
the in-memory fit refuses, with the same message; a Dask fit on stopped workers times out.

The reference for each message is the in-memory NumPy fit itself (scikit-learn's
``check_classification_targets`` for labels), run on the same values here.
"""

from __future__ import annotations

import os
import signal

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import local_dask_client

from softmaxreg import SoftmaxRegression, _dask

pytestmark = pytest.mark.timeout(300)

N = 600
rng = np.random.default_rng(0)
X = rng.normal(size=(N, 3))
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)


def _bad_labels() -> dict[str, np.ndarray]:
    nan_label = y.astype(float)
    nan_label[N // 2] = np.nan
    near = np.where(y == 1, 1.0000001, 1.0)
    missing = np.array(["a", "b", "c"], dtype=object)[y]
    missing[N - 3] = None
    mixed = np.array(["a", "b", "c"], dtype=object)[y]
    mixed[5] = 7
    return {
        "continuous": rng.normal(size=N),
        "nan": nan_label,
        "1.0 and 1.0000001": near,
        "None": missing,
        "str and int": mixed,
    }


def _bad_weights() -> dict[str, np.ndarray]:
    nan_weight = np.ones(N)
    nan_weight[N // 2] = np.nan
    negative = np.ones(N)
    negative[3] = -1.0
    subnormal = np.zeros(N)
    subnormal[7] = 5e-324
    return {"nan": nan_weight, "negative": negative, "zero": np.zeros(N), "5e-324": subnormal}


def in_memory_error(labels=y, weights=None) -> str:
    with pytest.raises(ValueError) as info:
        SoftmaxRegression().fit(X, labels, sample_weight=weights)
    return str(info.value)


def test_in_memory_messages_are_clear():
    labels, weights = _bad_labels(), _bad_weights()
    assert "continuous" in in_memory_error(labels["continuous"])
    assert "NaN" in in_memory_error(labels["nan"])
    assert "continuous" in in_memory_error(labels["1.0 and 1.0000001"])
    assert "missing label" in in_memory_error(labels["None"])
    assert "cannot be ordered" in in_memory_error(labels["str and int"])
    assert "NaN or infinity" in in_memory_error(weights=weights["nan"])
    assert "negative" in in_memory_error(weights=weights["negative"])
    assert "zero for every sample" in in_memory_error(weights=weights["zero"])
    assert "too little to compute with" in in_memory_error(weights=weights["5e-324"])


def test_tiny_total_weight_is_refused_but_a_tiny_single_weight_is_not():
    weights = np.ones(N)
    weights[0] = 5e-324  # one subnormal weight among normal ones: a sample that hardly counts
    model = SoftmaxRegression().fit(X, y, sample_weight=weights)
    reference = SoftmaxRegression().fit(X[1:], y[1:])
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ Dask
@pytest.fixture(scope="module")
def client():
    yield from local_dask_client(1)


@pytest.fixture(scope="module")
def dask_model(client):
    return SoftmaxRegression(tol=1e-4).fit(
        da.from_array(X, chunks=(150, 3)), da.from_array(y, chunks=150)
    )


@pytest.mark.parametrize("case", list(_bad_labels()))
def test_dask_labels_get_the_in_memory_check(dask_model, case):
    labels = _bad_labels()[case]
    before = {k: np.copy(v) for k, v in vars(dask_model).items() if k.endswith("_")}
    with pytest.raises(ValueError) as info:
        dask_model.fit(da.from_array(X, chunks=(150, 3)), da.from_array(labels, chunks=150))
    assert str(info.value) == in_memory_error(labels)
    assert sorted(k for k in vars(dask_model) if k.endswith("_")) == sorted(before)
    for name, value in before.items():  # the rejected fit changed nothing
        np.testing.assert_array_equal(getattr(dask_model, name), value)


@pytest.mark.parametrize("case", list(_bad_weights()))
def test_dask_weights_get_the_in_memory_check(client, case):
    weights = _bad_weights()[case]
    with pytest.raises(ValueError) as info:
        SoftmaxRegression().fit(
            da.from_array(X, chunks=(150, 3)),
            da.from_array(y, chunks=150),
            sample_weight=da.from_array(weights, chunks=150),
        )
    assert str(info.value) == in_memory_error(weights=weights)


def test_dask_predictions_on_rows_near_the_float_limit_equal_in_memory(dask_model):
    rows = np.vstack([np.full((3, 3), 1e308), [[1e308, -1e308, 1e308]], X[:4]])
    chunked = da.from_array(rows, chunks=(4, 3))
    expected = dask_model.predict_proba(rows)
    assert np.all(np.isfinite(expected))
    np.testing.assert_array_equal(dask_model.predict_proba(chunked).compute(), expected)
    np.testing.assert_array_equal(dask_model.predict(chunked).compute(), dask_model.predict(rows))
    np.testing.assert_array_equal(
        dask_model.predict_log_proba(chunked).compute(), dask_model.predict_log_proba(rows)
    )
    np.testing.assert_array_equal(
        dask_model.decision_function(chunked).compute(), dask_model.decision_function(rows)
    )


def test_dask_fit_on_stopped_workers_times_out(client, monkeypatch):
    """The worker holding the blocks is stopped (SIGSTOP) after the first Newton step: the
    fit raises a clear TimeoutError after the configured wait, not a hang."""
    worker = next(iter(client.scheduler_info()["workers"]))
    pid = client.run(os.getpid, workers=[worker])[worker]
    original = _dask.DaskSoftmaxObjective.loss_gradient_hessp
    calls = {"n": 0}

    def stopping(self, params):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(pid, signal.SIGSTOP)
        return original(self, params)

    monkeypatch.setattr(_dask.DaskSoftmaxObjective, "loss_gradient_hessp", stopping)
    model = SoftmaxRegression(solver="newton-cg")
    try:
        with dask.config.set({"softmaxreg.dask-timeout": 2}):
            with pytest.raises(TimeoutError, match="did not return a result within 2 s"):
                model.fit(da.from_array(X, chunks=(150, 3)), da.from_array(y, chunks=150))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert calls["n"] == 2
    assert not hasattr(model, "coef_")
    client.wait_for_workers(1, timeout=60)


def test_dask_timeout_setting_is_checked(client):
    with dask.config.set({"softmaxreg.dask-timeout": -1}):
        with pytest.raises(ValueError, match="softmaxreg.dask-timeout"):
            SoftmaxRegression().fit(da.from_array(X, chunks=(150, 3)), da.from_array(y, 150))


# ------------------------------------------------------------------ array API
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("case", ["continuous", "nan", "1.0 and 1.0000001"])
@pytest.mark.parametrize("labels_in_torch", [True, False], ids=["torch-y", "numpy-y"])
def test_array_api_labels_get_the_in_memory_check(case, labels_in_torch):
    labels = _bad_labels()[case]
    with pytest.raises(ValueError) as info:
        SoftmaxRegression().fit(
            torch.asarray(X), torch.asarray(labels) if labels_in_torch else labels
        )
    assert str(info.value) == in_memory_error(labels)


@pytest.mark.parametrize("case", ["None", "str and int"])
def test_array_api_object_labels_get_the_in_memory_check(case):
    labels = _bad_labels()[case]
    with pytest.raises(ValueError) as info:
        SoftmaxRegression().fit(torch.asarray(X), labels)
    assert str(info.value) == in_memory_error(labels)


@pytest.mark.parametrize("case", list(_bad_weights()))
def test_array_api_weights_get_the_in_memory_check(case):
    weights = _bad_weights()[case]
    with pytest.raises(ValueError) as info:
        SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y), sample_weight=weights)
    assert str(info.value) == in_memory_error(weights=weights)


def test_array_api_predictions_on_rows_near_the_float_limit_equal_numpy():
    model = SoftmaxRegression().fit(X, y)
    rows = np.vstack([np.full((2, 3), 1e308), [[1e308, -1e308, 1e308]], X[:3]])
    on_torch = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    for kind in ("predict_proba", "predict_log_proba", "decision_function"):
        expected = getattr(model, kind)(rows)
        assert not np.any(np.isnan(expected)), kind
        got = getattr(on_torch, kind)(torch.asarray(rows))
        assert isinstance(got, torch.Tensor), kind
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-9, err_msg=kind)
    np.testing.assert_array_equal(
        on_torch.predict(torch.asarray(rows)).numpy(), model.predict(rows)
    )
