"""Tables with awkward columns: Parquet nested and binary types, and column names that the
ONNX graph uses itself. pyarrow writes the files; onnxruntime runs the graphs."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest

from softmaxreg import SoftmaxRegression
from softmaxreg.tabular import TabularModel, read_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 60
rng = np.random.default_rng(0)
TARGET = rng.choice(["u", "v", "w"], N)


@pytest.mark.parametrize(
    ("column", "array", "kind"),
    [
        ("tags", pa.array([[1, 2]] * N, pa.list_(pa.int64())), "ndarray"),
        ("point", pa.array([{"x": 1.0, "y": 2.0}] * N), "dict"),
        ("attrs", pa.array([[("k", 1)]] * N, pa.map_(pa.string(), pa.int64())), "list"),
        ("blob", pa.array([b"\x00\x01"] * N, pa.binary()), "bytes"),
        ("price", pa.array([decimal.Decimal("1.25")] * N, pa.decimal128(5, 2)), "Decimal"),
    ],
    ids=["list", "struct", "map", "binary", "decimal"],
)
def test_parquet_nested_and_binary_columns_are_a_clear_error(tmp_path, column, array, kind):
    table = pa.table({"x": pa.array(rng.normal(size=N)), column: array, "y": pa.array(TARGET)})
    pq.write_table(table, tmp_path / "t.parquet")
    frame = read_table(tmp_path / "t.parquet")
    with pytest.raises(ValueError, match=f"column '{column}' holds {kind} values"):
        TabularModel().fit(frame.drop(columns="y"), frame["y"])


def test_object_columns_of_plain_values_still_fit():
    frame = pd.DataFrame(
        {"x": rng.normal(size=N), "city": pd.Series(rng.choice(["a", "b"], N), dtype=object)}
    )
    frame.loc[3, "city"] = None
    frame["city"] = frame["city"].fillna("a")
    model = TabularModel().fit(frame, TARGET)
    assert model.estimator_.n_features_in_ == 3


onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def test_onnx_inputs_never_take_the_graphs_own_names():
    """Columns named like the outputs, like an internal node and like the renamed input:
    the graph passes the checker and matches predict_proba and predict."""
    frame = pd.DataFrame(
        {
            "label": rng.normal(size=N),
            "probabilities": rng.choice(["p", "q", "r"], N),
            "softmaxreg/numeric": rng.normal(size=N),
            "label_input": rng.normal(size=N),
        }
    )
    model = TabularModel(SoftmaxRegression(C=3.0), standardize=True).fit(frame, TARGET)
    proto = model.to_onnx(dtype=np.float64)
    onnx.checker.check_model(proto, full_check=True)
    names = [i.name for i in proto.graph.input]
    assert names == [
        "label_input_",
        "probabilities_input",
        "softmaxreg/numeric_input",
        "label_input",
    ]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    label, probabilities = session.run(
        ["label", "probabilities"], model.onnx_inputs(frame, dtype=np.float64)
    )
    np.testing.assert_allclose(probabilities, model.predict_proba(frame), atol=1e-12)
    np.testing.assert_array_equal(label, model.predict(frame))
