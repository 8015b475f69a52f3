"""The model file: round trips, committed fixtures, and every kind of bad file.

References outside the code under test: the ``json`` and ``hashlib`` modules (the file is read
back and re-signed here, independently of ``softmaxreg._io``), a softmax written in this file,
and ``pickle`` itself (to prove that the pickle payload is live before showing that ``load``
does not run it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine

import softmaxreg
from softmaxreg import SoftmaxRegression
from softmaxreg import _io as io
from softmaxreg.tabular import TabularModel

FIXTURES = Path(__file__).parent / "fixtures"


# ------------------------------------------------------------------------------- helpers
def softmax(scores: np.ndarray) -> np.ndarray:
    """Reference softmax, written here on purpose (not softmaxreg._loss)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def read_document(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_signed(document: dict, path: Path, *, allow_nan: bool = False) -> Path:
    """Write ``document`` with a correct checksum, computed here from the documented rule:
    sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of ``document["model"]``."""
    canonical = json.dumps(
        document["model"],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=allow_nan,
    )
    document = dict(document, checksum="sha256:" + hashlib.sha256(canonical.encode()).hexdigest())
    path.write_text(json.dumps(document, allow_nan=allow_nan), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def iris_model(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    return SoftmaxRegression(C=0.7).fit(X, names[y])


@pytest.fixture()
def saved(iris_model, tmp_path) -> Path:
    path = tmp_path / "model.json"
    iris_model.save(path)
    return path


def small_table(n: int = 90, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n),
            "city": rng.choice(["Kyoto", "Osaka", "Nara"], n),
            "zone": rng.choice([3, 7, 11], n),
            "member": rng.choice([True, False], n),
            "age": rng.integers(18, 80, n),
        }
    )
    score = (frame.height - 170) / 10 + (frame.city == "Kyoto") - (frame.zone == 11)
    target = pd.Series(
        np.array(["low", "mid", "high"])[np.digitize(score + rng.normal(0, 0.8, n), [-0.5, 0.8])],
        name="level",
    )
    return frame, target


# ------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "labels",
    [
        np.array([10, 20, 30]),
        np.array(["setosa", "versicolor", "virginica"]),
        np.array(["setosa", "versicolor", "virginica"], dtype=object),
        np.array([-1.0, 0.0, 2.0]),
        np.array([3, 4, 5], dtype=np.int32),
    ],
    ids=["int", "str", "object-str", "float", "int32"],
)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("as_frame", [True, False], ids=["names", "no-names"])
def test_round_trip(iris, labels, fit_intercept, as_frame, tmp_path):
    X, y = iris
    X_in = X if as_frame else X.to_numpy()
    model = SoftmaxRegression(C=0.5, fit_intercept=fit_intercept).fit(X_in, labels[y])
    path = tmp_path / "m.json"
    model.save(path)
    loaded = softmaxreg.load(path)

    assert type(loaded) is SoftmaxRegression
    np.testing.assert_array_equal(loaded.predict_proba(X_in), model.predict_proba(X_in))
    np.testing.assert_array_equal(loaded.predict(X_in), model.predict(X_in))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.classes_.dtype.kind == model.classes_.dtype.kind
    assert loaded.score(X_in, labels[y]) == model.score(X_in, labels[y])
    if as_frame:
        np.testing.assert_array_equal(loaded.feature_names_in_, X.columns.to_numpy())
    else:
        assert not hasattr(loaded, "feature_names_in_")
    assert loaded.get_params() == model.get_params()
    assert (loaded.n_iter_, loaded.converged_, loaded.solver_) == (
        model.n_iter_,
        model.converged_,
        model.solver_,
    )
    # What the file says, read with the json module: coefficients bit for bit.
    body = read_document(path)["model"]
    np.testing.assert_array_equal(np.array(body["coef"]), model.coef_)
    np.testing.assert_array_equal(np.array(body["intercept"]), model.intercept_)


def test_round_trip_keeps_float32_and_bool_labels(tmp_path):
    X, y = load_wine(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    model = SoftmaxRegression().fit(X, y == 1)
    assert model.coef_.dtype == np.float32
    model.save(tmp_path / "m.json")
    loaded = softmaxreg.load(tmp_path / "m.json")
    assert loaded.coef_.dtype == np.float32 and loaded.classes_.dtype == bool
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_round_trip_of_parameters(iris, tmp_path):
    X, y = iris
    labels = np.array(["a", "b", "c"])[y]
    model = SoftmaxRegression(
        C=3.25, class_weight={"a": 2.0, "c": 0.5}, tol=1e-8, max_iter=77, random_state=5
    ).fit(X, labels)
    model.save(tmp_path / "m.json")
    loaded = softmaxreg.load(tmp_path / "m.json")
    assert loaded.get_params() == model.get_params()
    # The loaded estimator refits like the original (its parameters are real parameters).
    refit = clone(loaded).fit(X, labels)
    np.testing.assert_allclose(refit.coef_, model.coef_, atol=1e-6)


def test_saving_twice_gives_the_same_bytes(saved, tmp_path):
    again = tmp_path / "again.json"
    softmaxreg.load(saved).save(again)
    assert again.read_bytes() == saved.read_bytes()


def test_file_is_plain_json_with_header(saved):
    document = read_document(saved)
    assert document["format"] == "softmaxreg-model"
    assert document["schema_version"] == 1
    assert document["library_version"] == softmaxreg.__version__
    assert document["model"]["classes"] == {
        "dtype": "str",
        "values": ["setosa", "versicolor", "virginica"],
    }


def test_tabular_model_round_trip(tmp_path):
    frame, target = small_table()
    model = TabularModel(
        SoftmaxRegression(C=2.0), categorical=["zone"], standardize=True, drop=["age"]
    ).fit(frame, target)
    model.save(tmp_path / "t.json")
    loaded = softmaxreg.load(tmp_path / "t.json")
    assert isinstance(loaded, TabularModel)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(loaded.classes_, ["high", "low", "mid"])
    assert loaded.target_ == "level"
    assert list(loaded.feature_names_in_) == ["height", "city", "zone", "member"]
    assert list(loaded.estimator_.feature_names_in_) == [
        "height",
        "city=Kyoto",
        "city=Nara",
        "city=Osaka",
        "zone=3",
        "zone=7",
        "zone=11",
        "member=False",
        "member=True",
    ]
    assert loaded.get_params()["standardize"] is True
    assert list(loaded.get_params()["drop"]) == ["age"]


def test_save_refuses_unfitted_and_foreign_objects(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotFittedError):
        SoftmaxRegression().save(tmp_path / "m.json")
    with pytest.raises(TypeError, match="SoftmaxRegression"):
        io.save_model(LogisticRegression(), tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_save_to_a_missing_folder_names_the_file(saved, tmp_path):
    target = tmp_path / "no" / "such" / "model.json"
    with pytest.raises(OSError, match="model.json"):
        softmaxreg.load(saved).save(target)


# ------------------------------------------------------------------------------- fixtures
# tests/fixtures/model_v1.json was written once by softmaxreg 0.1.0 (schema 1):
# SoftmaxRegression(C=0.5) fitted on iris (DataFrame with the column names below) with the
# species names as labels. Its coefficients, copied here, give the expected probabilities
# through the softmax of this file. Later versions must keep loading it.
FIXTURE_COEF = [
    [-0.40652053667106713, 0.7311130427641062, -2.062804256223037, -0.8635891857623927],
    [0.37115194519564315, -0.3608653706332894, -0.10820810747397731, -0.6766050976613781],
    [0.035368591475424135, -0.3702476721308173, 2.171012363697014, 1.5401942834237714],
]
FIXTURE_INTERCEPT = [8.498996239415414, 2.1111890040681907, -10.610185243483603]
FIXTURE_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.3, 3.3, 6.0, 2.5]]
FIXTURE_PROBA = [
    [0.9698147257392539, 0.030184678162117735, 5.960986282805783e-07],
    [0.0014770761468371702, 0.39844337650421113, 0.6000795473489517],
    [1.048643013062207e-05, 0.012747874129855135, 0.9872416394400143],
]


def test_fixture_v1_still_loads():
    model = softmaxreg.load(FIXTURES / "model_v1.json")
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = pd.DataFrame(FIXTURE_ROWS, columns=columns)
    expected = softmax(
        np.array(FIXTURE_ROWS) @ np.array(FIXTURE_COEF).T + np.array(FIXTURE_INTERCEPT)
    )
    np.testing.assert_allclose(expected, FIXTURE_PROBA, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.predict_proba(rows), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.predict(rows), ["setosa", "virginica", "virginica"])
    assert list(model.feature_names_in_) == columns
    assert model.C == 0.5 and model.penalty == "l2"


# tests/fixtures/tabular_model_v1.json: a TabularModel written once by softmaxreg 0.1.0
# (what `softmaxreg fit --standardize --categorical grade --drop-first` writes): numeric x1 and
# x2 standardised, "color" (str) and "grade" (int) dummy-coded with their first category as
# baseline, integer labels 0, 1, 2. The expected probabilities are computed here by hand from
# the stored statistics and coefficients.
TABULAR_CENTER = {"x1": 9.561083333333332, "x2": -0.024749999999999998}
TABULAR_SCALE = {"x1": 2.5862926477338597, "x2": 0.9443683625400983}
TABULAR_COEF = [  # x1, color=green, color=red, grade=2, grade=5, x2
    [-1.2441522707743153, 0.2071672338508669, -1.0921484580201852, -0.09470344423780504,
     1.1457527901525002, -0.9628074373632928],
    [-0.16407910429141898, 0.11398918521641535, 0.30430176914659257, 0.32962293916995633,
     -0.04684468095317977, 0.1604830060992148],
    [1.4082313750657345, -0.3211564190672822, 0.7878466888735925, -0.23491949493215145,
     -1.0989081091993205, 0.8023244312640778],
]  # fmt: skip
TABULAR_INTERCEPT = [0.3228562794849035, -0.04676124506844913, -0.27609503441645494]


def test_tabular_fixture_v1_still_loads():
    model = softmaxreg.load(FIXTURES / "tabular_model_v1.json")
    assert isinstance(model, TabularModel) and model.target_ == "label"
    rows = pd.DataFrame(
        {
            "x1": [12.0, 7.5, 9.0, 10.0],
            "color": ["red", "blue", "green", "purple"],  # purple: unseen -> like the baseline
            "grade": [5, 1, 2, 2],
            "x2": [0.3, -1.2, 0.0, 2.0],
        }
    )
    design = np.column_stack(
        [
            (rows.x1 - TABULAR_CENTER["x1"]) / TABULAR_SCALE["x1"],
            rows.color == "green",
            rows.color == "red",
            rows.grade == 2,
            rows.grade == 5,
            (rows.x2 - TABULAR_CENTER["x2"]) / TABULAR_SCALE["x2"],
        ]
    ).astype(float)
    expected = softmax(design @ np.array(TABULAR_COEF).T + np.array(TABULAR_INTERCEPT))
    with pytest.warns(UserWarning, match="purple"):
        proba = model.predict_proba(rows)
    np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


# ------------------------------------------------------------------------------- bad files
def assert_rejected(path: Path, match: str | None = None) -> None:
    with pytest.raises(ValueError, match=match) as info:
        softmaxreg.load(path)
    assert "\n" not in str(info.value)


def test_empty_and_blank_files(tmp_path):
    for content in (b"", b"   \n\t "):
        path = tmp_path / "empty.json"
        path.write_bytes(content)
        assert_rejected(path, "empty")


def test_truncated_files(saved, tmp_path):
    data = saved.read_bytes()
    for cut in [1, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 3]:
        path = tmp_path / f"cut{cut}.json"
        path.write_bytes(data[:cut])
        assert_rejected(path)


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(1)
    for index in range(20):
        path = tmp_path / f"random{index}.bin"
        path.write_bytes(rng.integers(0, 256, 200 + 50 * index, dtype=np.uint8).tobytes())
        assert_rejected(path)


class _Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_payload_is_not_executed(tmp_path, protocol):
    # The payload is live: unpickling it does create its marker.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(str(proof)), protocol=protocol))
    assert proof.exists()

    marker = tmp_path / "marker"
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=protocol))
    assert_rejected(path)
    assert not marker.exists()


def test_pickle_payload_inside_npy_and_npz(tmp_path):
    marker = tmp_path / "marker"
    payload = np.array([_Payload(str(marker))], dtype=object)
    np.save(tmp_path / "model.npy", payload, allow_pickle=True)
    np.savez(tmp_path / "model.npz", coef=payload)
    assert_rejected(tmp_path / "model.npy", "NumPy")
    assert_rejected(tmp_path / "model.npz", "zip")
    assert not marker.exists()


def test_foreign_files(tmp_path):
    foreign_zip = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign_zip, "w") as archive:
        archive.writestr("model.json", '{"format": "softmaxreg-model"}')
    assert_rejected(foreign_zip, "zip")
    parquet = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(parquet)
    assert_rejected(parquet, "Parquet")
    for text in ['{"a": 1}', "[]", '"softmaxreg-model"', "null", "3.5", '{"format": 7}']:
        path = tmp_path / "foreign.json"
        path.write_text(text)
        assert_rejected(path, "softmaxreg")
    onnx_like = tmp_path / "model.onnx"
    onnx_like.write_bytes(b"\x08\x08\x12\x0askl2onnx\x1a\x051.0.0")
    assert_rejected(onnx_like)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        softmaxreg.load(tmp_path / "nothing.json")
    assert_rejected(tmp_path, "directory")


def test_oversized_file_is_refused_before_reading(saved, monkeypatch):
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 100)
    assert_rejected(saved, "larger than")


@pytest.mark.parametrize(
    ("version", "match"),
    [(2, "upgrade softmaxreg"), (0, "schema_version"), ("1", "schema_version"), (None, "schema")],
)
def test_schema_version(saved, tmp_path, version, match):
    document = read_document(saved)
    document["schema_version"] = version
    assert_rejected(write_signed(document, tmp_path / "v.json"), match)


def test_checksum_catches_a_changed_digit(saved, tmp_path):
    text = saved.read_text()
    coefficient = str(read_document(saved)["model"]["coef"][0][0])
    changed = coefficient[:-1] + ("1" if coefficient[-1] != "1" else "2")
    path = tmp_path / "edited.json"
    path.write_text(text.replace(coefficient, changed, 1))
    assert_rejected(path, "checksum")


def _tampered(document: dict, edit) -> dict:
    document = json.loads(json.dumps(document))
    edit(document["model"])
    return document


def _set_first_coef(value):
    def edit(model):
        model["coef"][0][0] = value

    return edit


TAMPERING = {
    "coef missing a row": lambda m: m["coef"].pop(),
    "coef row too short": lambda m: m["coef"][1].pop(),
    "coef row too long": lambda m: m["coef"][2].append(1.0),
    "intercept too short": lambda m: m["intercept"].pop(),
    "n_features mismatch": lambda m: m.update(n_features=5),
    "n_features zero": lambda m: m.update(n_features=0),
    "string in coef": _set_first_coef("1.0"),
    "bool in coef": _set_first_coef(True),
    "null in coef": _set_first_coef(None),
    "list in coef": _set_first_coef([1.0]),
    "huge integer in coef": _set_first_coef(10**400),
    "overflow for float32": lambda m: m.update(coef_dtype="float32", coef=[[1e300] * 4] * 3),
    "unknown coef dtype": lambda m: m.update(coef_dtype="float128"),
    "one class": lambda m: m.update(
        classes={"dtype": "str", "values": ["a"]}, coef=m["coef"][:1], intercept=[0.0]
    ),
    "unsorted classes": lambda m: m["classes"].update(values=["b", "a", "c"]),
    "duplicate classes": lambda m: m["classes"].update(values=["a", "a", "c"]),
    "classes of another type": lambda m: m["classes"].update(values=[1, 2, 3]),
    "unknown class dtype": lambda m: m["classes"].update(dtype="complex128"),
    "int class out of range": lambda m: m["classes"].update(dtype="int8", values=[1, 2, 300]),
    "feature names too few": lambda m: m["feature_names"].pop(),
    "feature name not a string": lambda m: m["feature_names"].__setitem__(0, 3),
    "negative C": lambda m: m["params"].update(C=-1.0),
    "C as a string": lambda m: m["params"].update(C="1"),
    "unknown penalty": lambda m: m["params"].update(penalty="l3"),
    "unknown parameter": lambda m: m["params"].update(n_jobs=4),
    "l1_ratio above 1": lambda m: m["params"].update(l1_ratio=1.5),
    "class_weight of unknown class": lambda m: m["params"].update(
        class_weight={"classes": {"dtype": "str", "values": ["zebra"]}, "weights": [1.0]}
    ),
    "intercept without fit_intercept": lambda m: m["params"].update(fit_intercept=False),
    "n_iter negative": lambda m: m.update(n_iter=-1),
    "converged not bool": lambda m: m.update(converged=1),
    "unknown estimator": lambda m: m.update(estimator="LogisticRegression"),
    "unknown field": lambda m: m.update(pickle="gASV"),
    "missing field": lambda m: m.pop("intercept"),
    "preprocessing not an object": lambda m: m.update(preprocessing=[1]),
    "preprocessing of other columns": lambda m: m.update(
        preprocessing={
            "target": None,
            "params": {
                "categorical": [],
                "standardize": False,
                "drop": [],
                "max_categories": 10,
                "drop_first": False,
            },
            "columns": [{"name": "x", "type": "numeric", "center": None, "scale": None}],
        }
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampered_fields_are_rejected(saved, tmp_path, name):
    # Re-signed, so the checksum passes and the field validation itself is what rejects it.
    document = _tampered(read_document(saved), TAMPERING[name])
    assert_rejected(write_signed(document, tmp_path / "t.json"))


def test_non_finite_numbers_are_rejected(saved, tmp_path):
    for value in (math.nan, math.inf, -math.inf):
        document = _tampered(read_document(saved), _set_first_coef(value))
        assert_rejected(write_signed(document, tmp_path / "t.json", allow_nan=True), "finite")
    text = saved.read_text()
    coefficient = str(read_document(saved)["model"]["coef"][0][0])
    path = tmp_path / "big.json"
    path.write_text(text.replace(coefficient, "1e999", 1))
    assert_rejected(path, "out of range")


def test_structural_attacks(saved, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert_rejected(deep, "nested")
    text = saved.read_text()
    duplicate = tmp_path / "duplicate.json"
    duplicate.write_text(
        text.replace('"format": "softmaxreg-model",', '"format": 1, "format": "softmaxreg-model",')
    )
    assert_rejected(duplicate, "duplicate key")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(text.replace("setosa", "s\xe9tosa").encode("latin-1"))
    assert_rejected(latin1, "UTF-8")


def test_tampered_tabular_preprocessing(tmp_path):
    frame, target = small_table()
    TabularModel(standardize=True).fit(frame, target).save(tmp_path / "t.json")
    document = read_document(tmp_path / "t.json")
    edits = [
        lambda p: p["columns"][0].update(scale=0.0),
        lambda p: p["columns"][0].update(scale=None),
        lambda p: p["columns"][1].update(categories=["Kyoto", "Kyoto", "Osaka"]),
        lambda p: p["columns"][1].update(categories=["Kyoto", "Osaka"]),
        lambda p: p["columns"][1].update(dtype="float"),
        lambda p: p["columns"][2].update(categories=[3, 7, "11"]),
        lambda p: p["columns"][0].update(type="date"),
        lambda p: p["columns"].append(dict(p["columns"][0])),
        lambda p: p.update(target="height"),
        lambda p: p["params"].update(max_categories=0),
    ]
    for index, edit in enumerate(edits):
        changed = _tampered(document, lambda m, edit=edit: edit(m["preprocessing"]))
        assert_rejected(write_signed(changed, tmp_path / f"p{index}.json"))


# ------------------------------------------------------------------------------- hypothesis
@pytest.fixture(scope="module")
def valid_bytes(iris_model, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "m.json"
    iris_model.save(path)
    return path.read_bytes()


def _load_only_value_error(path: Path):
    """Load ``path``: a ModelFileError is the only acceptable failure, and the load's peak
    memory (tracemalloc) stays within the bound of the parse; a success must be usable."""
    tracemalloc.start()
    try:
        model = softmaxreg.load(path)
    except ValueError as exc:
        assert isinstance(exc, io.ModelFileError), repr(exc)
        assert str(exc)
        event("rejected")
        return None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= io.MAX_PARSE_MEMORY_FACTOR * path.stat().st_size + (8 << 20)
    check_usable(model)
    event("loaded and usable")
    return model


def check_usable(model) -> None:
    if isinstance(model, TabularModel):
        row = {}
        for column in model.preprocessor_.columns:
            if hasattr(column, "categories"):
                row[column.name] = [column.categories[0]]
            else:
                row[column.name] = [column.center or 0.0]
        frame = pd.DataFrame(row)
        proba = model.predict_proba(frame)
    else:
        X = np.zeros((2, model.n_features_in_))
        if hasattr(model, "feature_names_in_"):
            X = pd.DataFrame(X, columns=list(model.feature_names_in_))
        proba = model.predict_proba(X)
        assert set(model.predict(X).tolist()) <= set(model.classes_.tolist())
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_bytes_only_raise_value_error(valid_bytes, tmp_path, data):
    mutated = bytearray(valid_bytes)
    for _ in range(data.draw(st.integers(1, 4), label="n_mutations")):
        operation = data.draw(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate"]))
        position = data.draw(st.integers(0, len(mutated) - 1), label="position")
        if operation == "flip":
            mutated[position] = data.draw(st.integers(0, 255), label="byte")
        elif operation == "delete":
            del mutated[position : position + data.draw(st.integers(1, 40))]
        elif operation == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif operation == "repeat":  # a field blown up: a slice repeated up to 20,000 times
            piece = bytes(mutated[position : position + data.draw(st.integers(1, 30))])
            mutated[position:position] = piece * data.draw(st.integers(2, 20_000))
        else:
            del mutated[position:]
        if not mutated:
            break
    path = tmp_path / "mutated.json"
    path.write_bytes(bytes(mutated))
    _load_only_value_error(path)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every (container, key) inside ``value``, lists limited to their first entries."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield prefix + (index,)
            yield from _paths(item, prefix + (index,))


@pytest.fixture(scope="module")
def valid_documents(iris_model, tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("docs")
    frame, target = small_table()
    TabularModel(categorical=["zone"], standardize=True, drop_first=True).fit(frame, target).save(
        folder / "tabular.json"
    )
    iris_model.save(folder / "plain.json")
    return [read_document(folder / "plain.json"), read_document(folder / "tabular.json")]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_resigned_structural_mutations_only_raise_value_error(valid_documents, tmp_path, data):
    document = json.loads(json.dumps(data.draw(st.sampled_from(valid_documents))))
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        paths = list(_paths(document))
        path = data.draw(st.sampled_from(paths), label="path")
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        operation = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        if operation == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(path[-1], data.draw(json_values, label="value"))
        else:
            parent[data.draw(st.text(max_size=6), label="key")] = data.draw(json_values)
        if not isinstance(document, dict) or not isinstance(document.get("model"), dict):
            break
    if isinstance(document, dict) and isinstance(document.get("model"), dict):
        path = write_signed(document, tmp_path / "mutated.json")
    else:
        path = tmp_path / "mutated.json"
        path.write_text(json.dumps(document))
    _load_only_value_error(path)
