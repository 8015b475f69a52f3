"""ONNX export, checked by running the graph in onnxruntime (the outside reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine

import softmaxreg
from softmaxreg import SoftmaxRegression
from softmaxreg.tabular import TabularModel

onnx = pytest.importorskip("onnx", reason="onnx is an optional extra: pip install softmaxreg[onnx]")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is needed to run exported graphs")


def run(model_proto, feed: dict) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(
        model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    label, probabilities = session.run(["label", "probabilities"], feed)
    return label, probabilities


def standardized(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return standardized(X), y


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 1, 2]),
        np.array([7, -3, 12], dtype=np.int32),
        np.array(["barolo", "grignolino", "barbera"]),
        np.array(["日本酒", "ワイン", "ビール"], dtype=object),
        np.array([-1.0, 1.0, 2.0]),
    ],
    ids=["int", "int32", "str", "object-unicode", "float"],
)
def test_float32_graph_matches_predict_proba_and_predict(wine, labels):
    X, y = wine
    model = SoftmaxRegression(C=0.3).fit(X, labels[y])
    X32 = X.astype(np.float32)
    label, probabilities = run(model.to_onnx(), {"input": X32})
    # The graph sees float32 inputs; so does the reference (upcast exactly to float64).
    reference = model.predict_proba(X32.astype(np.float64))
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, reference, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, model.predict(X32.astype(np.float64)))


def test_float64_graph_and_no_intercept(wine):
    X, y = wine
    model = SoftmaxRegression(fit_intercept=False).fit(X, y)
    label, probabilities = run(model.to_onnx(dtype=np.float64), {"input": X})
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-12, rtol=0)
    np.testing.assert_array_equal(label, model.predict(X))


def test_binary_bool_labels_and_many_classes():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    binary = SoftmaxRegression().fit(X, y >= 5)
    label, probabilities = run(binary.to_onnx(), {"input": X.astype(np.float32)})
    assert label.dtype == bool and probabilities.shape == (len(X), 2)
    np.testing.assert_allclose(probabilities, binary.predict_proba(X), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, binary.predict(X))

    ten = SoftmaxRegression(C=0.1).fit(X, y)
    label, probabilities = run(ten.to_onnx(), {"input": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, ten.predict_proba(X), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, ten.predict(X))


def test_graph_interface_and_checker(wine):
    X, y = wine
    proto = SoftmaxRegression().fit(X, y).to_onnx()
    onnx.checker.check_model(proto, full_check=True)
    (graph_input,) = proto.graph.input
    assert graph_input.name == "input"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[1].dim_value == X.shape[1]
    assert [output.name for output in proto.graph.output] == ["label", "probabilities"]
    assert {op.domain: op.version for op in proto.opset_import}[""] >= 13


def test_loaded_model_exports_the_same(wine, tmp_path):
    X, y = wine
    model = SoftmaxRegression().fit(X, np.array(["a", "b", "c"])[y])
    model.save(tmp_path / "m.json")
    loaded = softmaxreg.load(tmp_path / "m.json")
    label, probabilities = run(loaded.to_onnx(), {"input": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, model.predict(X))


def test_export_errors(wine):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    X, y = wine
    with pytest.raises(NotFittedError):
        SoftmaxRegression().to_onnx()
    with pytest.raises(ValueError, match="float32 or float64"):
        SoftmaxRegression().fit(X, y).to_onnx(dtype=np.int64)
    with pytest.raises(TypeError, match="SoftmaxRegression"):
        softmaxreg._io.to_onnx(LogisticRegression().fit(X, y))


# ------------------------------------------------------------------- preprocessing in the graph
def raw_table(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, n).round(0),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "rooms": rng.integers(1, 7, n),
            "zone": rng.choice([110, 220, 330], n),
            "garden": rng.choice([True, False], n),
            "age": rng.uniform(0, 90, n),
        }
    )
    score = (
        (frame.income - 50_000) / 15_000
        + 0.8 * (frame.region == "south")
        - 0.6 * (frame.zone == 330)
        + 0.5 * frame.garden
        - 0.02 * frame.age
        + 0.3 * frame.rooms
    )
    noisy = score + rng.normal(0, 0.7, n)
    target = pd.Series(
        np.array(["cheap", "fair", "dear"])[np.digitize(noisy, [-0.3, 1.0])], name="price"
    )
    return frame, target


def feed_for(frame: pd.DataFrame, dtype=np.float32) -> dict:
    """The documented input convention, built here: one [N, 1] input per raw column."""
    return {
        "income": frame[["income"]].to_numpy(dtype),
        "region": frame[["region"]].to_numpy(dtype=object),
        "rooms": frame[["rooms"]].to_numpy(dtype),
        "zone": frame[["zone"]].to_numpy(np.int64),
        "garden": frame[["garden"]].to_numpy(bool),
        "age": frame[["age"]].to_numpy(dtype),
    }


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("drop_first", [False, True])
def test_tabular_graph_takes_raw_columns(standardize, drop_first, tmp_path):
    frame, target = raw_table(400, seed=3)
    model = TabularModel(
        SoftmaxRegression(C=5.0),
        categorical=["zone"],
        standardize=standardize,
        drop_first=drop_first,
    ).fit(frame, target)
    model.save(tmp_path / "t.json")
    loaded = softmaxreg.load(tmp_path / "t.json")
    proto = loaded.to_onnx()
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == list(frame.columns)

    test, _ = raw_table(300, seed=4)
    test.loc[:4, "region"] = "atlantis"  # unseen: all zeros in the graph and in Python
    test.loc[5:9, "zone"] = 999
    # Python sees the float32-rounded numeric values the graph sees.
    as_float32 = test.assign(
        **{c: test[c].astype(np.float32).astype(float) for c in ["income", "rooms", "age"]}
    )
    with pytest.warns(UserWarning, match="atlantis"):
        expected = model.predict_proba(as_float32)
        expected_label = model.predict(as_float32)
    label, probabilities = run(proto, feed_for(test))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, expected_label)
    # The helper builds the same feed.
    helper_feed = loaded.onnx_inputs(test)
    for name, value in feed_for(test).items():
        np.testing.assert_array_equal(helper_feed[name], value)


def test_tabular_graph_float64_inputs():
    frame, target = raw_table(300, seed=5)
    model = TabularModel(categorical=["zone"], standardize=True).fit(frame, target)
    label, probabilities = run(model.to_onnx(dtype=np.float64), feed_for(frame, np.float64))
    np.testing.assert_allclose(probabilities, model.predict_proba(frame), atol=1e-12, rtol=0)
    np.testing.assert_array_equal(label, model.predict(frame))


def test_tabular_graph_only_categorical_columns():
    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame({"petal": np.digitize(X[:, 2], [2.5, 5.0]).astype(str)})
    model = TabularModel().fit(frame, y)
    label, probabilities = run(model.to_onnx(), {"petal": frame[["petal"]].to_numpy(object)})
    np.testing.assert_allclose(probabilities, model.predict_proba(frame), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(label, model.predict(frame))
