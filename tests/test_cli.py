"""The data commands of the command line: fit, predict, evaluate, summary, plot.

Outside references: scikit-learn's ``LogisticRegression`` fitted on a design matrix that this
file builds with ``pandas.get_dummies`` (the CLI's fit must give the same probabilities),
``sklearn.metrics`` for the evaluation numbers, and the covertype data for real-data accuracy.
"""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
)

import softmaxreg
from softmaxreg import SoftmaxRegression
from softmaxreg._cli_tabular import Progress
from softmaxreg.cli import main
from softmaxreg.tabular import TabularModel

COVERTYPE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "covertype"


def call(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; usage errors (SystemExit) count as a return code too."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *names: str) -> None:
    assert code != 0
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])


def make_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n).round(1),
            "city": rng.choice(["Kyoto", "Osaka", "Nara"], n),
            "zone": rng.choice([3, 7, 11], n),
            "member": rng.choice([True, False], n),
            "weight": rng.normal(60, 8, n).round(1),
        }
    )
    score = (
        (frame.height - 170) / 8
        + 1.2 * (frame.city == "Kyoto")
        - (frame.zone == 11)
        + 0.7 * frame.member
        - (frame.weight - 60) / 10
    )
    labels = np.array(["low", "mid", "high"])
    frame["level"] = labels[np.digitize(score + rng.normal(0, 0.8, n), [-0.6, 0.9])]
    return frame


@pytest.fixture()
def data(tmp_path) -> dict[str, Path]:
    train, test = make_table(300, seed=1), make_table(120, seed=2)
    paths = {
        "train_csv": tmp_path / "train.csv",
        "train_parquet": tmp_path / "train.parquet",
        "test_csv": tmp_path / "test.csv",
        "test_parquet": tmp_path / "test.parquet",
    }
    train.to_csv(paths["train_csv"], index=False)
    train.to_parquet(paths["train_parquet"])
    test.to_csv(paths["test_csv"], index=False)
    test.to_parquet(paths["test_parquet"])
    paths["dir"] = tmp_path
    return paths


def reference_proba(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn on a design built here: one-hot by get_dummies, numerics standardised."""
    categorical = ["city", "zone", "member"]
    numeric = ["height", "weight"]
    both = pd.get_dummies(
        pd.concat([train, test]).drop(columns="level"), columns=categorical, dtype=float
    )
    mean, std = train[numeric].mean(), train[numeric].std(ddof=0)
    both[numeric] = (both[numeric] - mean) / std
    X_train, X_test = both.iloc[: len(train)], both.iloc[len(train) :]
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(
        X_train.to_numpy(), train["level"].to_numpy()
    )
    return reference.predict_proba(X_test.to_numpy()), reference.classes_


# ------------------------------------------------------------------------------ fit + predict
def test_fit_predict_matches_scikit_learn(capsys, data):
    model_path = data["dir"] / "model.json"
    code, out, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "--standardize",
        "--categorical", "zone", "--tol", "1e-10", "-o", model_path,
    )  # fmt: skip
    assert code == 0, err
    assert "Model written to" in out and "3 classes" in out
    model = softmaxreg.load(model_path)
    assert isinstance(model, TabularModel) and model.target_ == "level"

    out_path = data["dir"] / "pred.csv"
    code, out, err = call(
        capsys, "predict", model_path, data["test_csv"], "--proba", "-o", out_path
    )
    assert code == 0, err
    predictions = pd.read_csv(out_path)
    test = pd.read_csv(data["test_csv"])
    assert list(predictions.columns) == [
        "predicted_level", "proba_high", "proba_low", "proba_mid"
    ]
    assert len(predictions) == len(test)

    expected, classes = reference_proba(pd.read_csv(data["train_csv"]), test)
    assert list(classes) == ["high", "low", "mid"]
    proba = predictions[["proba_high", "proba_low", "proba_mid"]].to_numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    clear = np.sort(expected, axis=1)[:, -1] - np.sort(expected, axis=1)[:, -2] > 1e-4
    np.testing.assert_array_equal(
        predictions["predicted_level"].to_numpy()[clear],
        classes[expected.argmax(axis=1)][clear],
    )


def test_predict_to_stdout_labels_only(capsys, data):
    model_path = data["dir"] / "model.json"
    assert call(capsys, "fit", data["train_csv"], "--target", "level", "-o", model_path)[0] == 0
    code, out, err = call(capsys, "predict", model_path, data["test_csv"])
    assert code == 0, err
    lines = out.strip().split("\n")
    assert lines[0] == "predicted_level"
    assert len(lines) == 1 + 120
    assert set(lines[1:]) <= {"low", "mid", "high"}


def test_parquet_and_csv_give_the_same_model(capsys, data):
    csv_model, parquet_model = data["dir"] / "csv.json", data["dir"] / "parquet.json"
    for source, target in ((data["train_csv"], csv_model), (data["train_parquet"], parquet_model)):
        code, _, err = call(
            capsys, "fit", source, "--target", "level", "--standardize", "-o", target
        )
        assert code == 0, err
    outputs = []
    for model_path in (csv_model, parquet_model):
        code, out, err = call(capsys, "predict", model_path, data["test_parquet"], "--proba")
        assert code == 0, err
        outputs.append(pd.read_csv(io.StringIO(out)))
    pd.testing.assert_frame_equal(outputs[0], outputs[1], rtol=1e-9)


def test_fit_options_reach_the_estimator(capsys, data):
    model_path = data["dir"] / "model.json"
    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "--C", "0.25",
        "--class-weight", "balanced", "--drop", "weight", "--max-iter", "500", "-o", model_path,
    )  # fmt: skip
    assert code == 0, err
    model = softmaxreg.load(model_path)
    assert model.estimator_.C == 0.25 and model.estimator_.class_weight == "balanced"
    assert model.estimator_.max_iter == 500
    assert "weight" not in model.feature_names_in_


def test_plain_model_file_from_python(capsys, data):
    """A SoftmaxRegression saved from Python reads its named columns from the table."""
    train = pd.read_csv(data["train_csv"])
    model = SoftmaxRegression().fit(train[["weight", "height"]], train["level"])
    model.save(data["dir"] / "plain.json")
    code, out, err = call(
        capsys, "predict", data["dir"] / "plain.json", data["test_csv"], "--proba"
    )
    assert code == 0, err
    predicted = pd.read_csv(io.StringIO(out))
    test = pd.read_csv(data["test_csv"])
    expected = model.predict_proba(test[["weight", "height"]])
    np.testing.assert_allclose(predicted.iloc[:, 1:].to_numpy(), expected, rtol=1e-12)
    assert predicted.columns[0] == "predicted"


# ------------------------------------------------------------------------------ evaluate
def test_evaluate_matches_sklearn_metrics(capsys, data):
    model_path = data["dir"] / "model.json"
    assert call(capsys, "fit", data["train_csv"], "--target", "level", "-o", model_path)[0] == 0
    code, out, _ = call(capsys, "predict", model_path, data["test_csv"], "--proba")
    predictions = pd.read_csv(io.StringIO(out))
    classes = ["high", "low", "mid"]
    proba = predictions[[f"proba_{c}" for c in classes]].to_numpy()
    y = pd.read_csv(data["test_csv"])["level"].to_numpy()

    code, out, err = call(capsys, "evaluate", model_path, data["test_csv"], "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["classes"] == classes
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predictions["predicted_level"]))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba, labels=classes), rel=1e-9)
    onehot = (y[:, None] == np.array(classes)[None, :]).astype(float)
    assert metrics["brier"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predictions["predicted_level"], labels=classes, zero_division=0
    )
    np.testing.assert_allclose(metrics["precision"], precision)
    np.testing.assert_allclose(metrics["recall"], recall)
    np.testing.assert_allclose(metrics["f1"], f1)
    np.testing.assert_array_equal(metrics["support"], support)
    np.testing.assert_array_equal(
        metrics["confusion_matrix"],
        confusion_matrix(y, predictions["predicted_level"], labels=classes),
    )

    code, text, err = call(capsys, "evaluate", model_path, data["test_csv"], "--target", "level")
    assert code == 0, err
    accuracy = float(re.search(r"^accuracy\s+([0-9.]+)$", text, re.M).group(1))
    assert accuracy == pytest.approx(metrics["accuracy"], abs=5e-5)
    for label in ("log loss", "Brier score", "precision", "recall", "f1-score", "Confusion matrix"):
        assert label in text


# ------------------------------------------------------------------------------ errors
def test_missing_data_file(capsys, tmp_path):
    code, _, err = call(capsys, "fit", tmp_path / "nope.csv", "--target", "y", "-o", tmp_path / "m")
    assert_one_line_error(code, err, "nope.csv")


def test_missing_target_column(capsys, data):
    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "levle", "-o", data["dir"] / "m"
    )
    assert_one_line_error(code, err, "'levle'", "train.csv")
    model_path = data["dir"] / "model.json"
    assert call(capsys, "fit", data["train_csv"], "--target", "level", "-o", model_path)[0] == 0
    code, _, err = call(capsys, "evaluate", model_path, data["test_csv"], "--target", "grade")
    assert_one_line_error(code, err, "'grade'", "test.csv")


def test_model_file_errors(capsys, data):
    code, _, err = call(capsys, "predict", data["dir"] / "missing.json", data["test_csv"])
    assert_one_line_error(code, err, "missing.json")
    broken = data["dir"] / "broken.json"
    broken.write_text('{"format": "softmaxreg-model", "schema_version": 1, "model": {')
    code, _, err = call(capsys, "evaluate", broken, data["test_csv"], "--target", "level")
    assert_one_line_error(code, err, "broken.json")


def test_data_errors(capsys, data):
    tmp = data["dir"]
    model_path = tmp / "model.json"
    assert call(capsys, "fit", data["train_csv"], "--target", "level", "-o", model_path)[0] == 0

    test = pd.read_csv(data["test_csv"])
    test.drop(columns="city").to_csv(tmp / "no_city.csv", index=False)
    code, _, err = call(capsys, "predict", model_path, tmp / "no_city.csv")
    assert_one_line_error(code, err, "'city'")

    test.assign(level=np.where(test.index < 3, "extreme", test.level)).to_csv(
        tmp / "unseen.csv", index=False
    )
    code, _, err = call(capsys, "evaluate", model_path, tmp / "unseen.csv")
    assert_one_line_error(code, err, "extreme")

    train = pd.read_csv(data["train_csv"])
    train.loc[5, "height"] = np.nan
    train.to_csv(tmp / "nan.csv", index=False)
    code, _, err = call(capsys, "fit", tmp / "nan.csv", "--target", "level", "-o", tmp / "m")
    assert_one_line_error(code, err, "'height'", "missing")

    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "--categorical", "colour",
        "-o", tmp / "m",
    )  # fmt: skip
    assert_one_line_error(code, err, "'colour'")

    train.assign(id=[f"row{i}" for i in range(len(train))]).fillna(0).to_csv(
        tmp / "ids.csv", index=False
    )
    code, _, err = call(
        capsys, "fit", tmp / "ids.csv", "--target", "level", "--max-categories", "50",
        "-o", tmp / "m",
    )  # fmt: skip
    assert_one_line_error(code, err, "'id'", "distinct")

    (tmp / "empty.csv").write_text("")
    code, _, err = call(capsys, "fit", tmp / "empty.csv", "--target", "level", "-o", tmp / "m")
    assert_one_line_error(code, err, "empty.csv")
    (tmp / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    code, _, err = call(capsys, "predict", model_path, tmp / "bad.parquet")
    assert_one_line_error(code, err, "bad.parquet")
    assert not (tmp / "m").exists()


def test_plain_model_needs_numeric_columns(capsys, data):
    train = pd.read_csv(data["train_csv"])
    model = SoftmaxRegression().fit(train[["height", "weight"]].to_numpy(), train["level"])
    model.save(data["dir"] / "nameless.json")
    code, _, err = call(capsys, "predict", data["dir"] / "nameless.json", data["test_csv"])
    assert_one_line_error(code, err, "expects 2")
    test = pd.read_csv(data["test_csv"])
    test[["height", "city", "level"]].to_csv(data["dir"] / "text.csv", index=False)
    code, _, err = call(
        capsys, "evaluate", data["dir"] / "nameless.json", data["dir"] / "text.csv",
        "--target", "level",
    )  # fmt: skip
    assert_one_line_error(code, err, "'city'", "not numeric")


def test_usage_errors_are_one_line(capsys, data):
    code, _, err = call(capsys, "fit", data["train_csv"])
    assert_one_line_error(code, err, "--target")
    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "-o", "m", "--C", "x"
    )
    assert_one_line_error(code, err, "--C")


# ------------------------------------------------------------------------------ summary, plot
def test_summary_prints_the_inference_table(capsys, data):
    pytest.importorskip("softmaxreg.inference", reason="softmaxreg.inference not present")
    model_path = data["dir"] / "model.json"
    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "--penalty", "none",
        "--drop-first", "--standardize", "--categorical", "zone", "--tol", "1e-10",
        "-o", model_path,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = call(capsys, "summary", model_path, data["train_csv"])
    assert code == 0, err
    for text in ("std err", "intercept", "city=Nara", "city=Osaka", "zone=7", "member=True"):
        assert text in out
    assert "city=Kyoto" not in out  # the baseline of the dummy coding


def test_summary_of_full_one_hot_model_says_drop_first(capsys, data):
    pytest.importorskip("softmaxreg.inference", reason="softmaxreg.inference not present")
    model_path = data["dir"] / "model.json"
    code, _, err = call(
        capsys, "fit", data["train_csv"], "--target", "level", "--penalty", "none",
        "-o", model_path,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = call(capsys, "summary", model_path, data["train_csv"])
    assert_one_line_error(code, err, "--drop-first")


def test_plot_writes_a_png(capsys, data):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    from softmaxreg import plot

    if not hasattr(plot, "plot_model"):
        pytest.skip("softmaxreg.plot.plot_model (issue 6) is not in this tree yet")
    model_path = data["dir"] / "model.json"
    assert call(capsys, "fit", data["train_csv"], "--target", "level", "-o", model_path)[0] == 0
    for kind in ("confusion_matrix", "coefficients"):
        figure = data["dir"] / f"{kind}.png"
        code, out, err = call(
            capsys, "plot", model_path, data["test_csv"], "--kind", kind, "-o", figure
        )
        assert code == 0, err
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = call(
        capsys, "plot", model_path, data["test_csv"], "--kind", "pie", "-o", data["dir"] / "x.png"
    )
    assert_one_line_error(code, err, "pie")


# ------------------------------------------------------------------------------ progress
def _wait_for_output(stream: io.StringIO, needle: str) -> None:
    done = threading.Event()
    for _ in range(1000):
        if needle in stream.getvalue():
            return
        done.wait(0.01)
    raise AssertionError(f"no progress output containing {needle!r}: {stream.getvalue()!r}")


def test_progress_lines_on_a_log_stream():
    stream = io.StringIO()
    with Progress("fitting 300 rows", stream=stream, delay=0.0, every=0.01):
        _wait_for_output(stream, "fitting 300 rows, ")
    assert " s\n" in stream.getvalue()


def test_progress_on_a_terminal_is_erased_at_the_end():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Progress("fitting", stream=stream, delay=0.0, interval=0.01):
        _wait_for_output(stream, "\r\033[Kfitting")
    assert stream.getvalue().endswith("\r\033[K")


def test_no_progress_for_short_steps():
    stream = io.StringIO()
    with Progress("fitting", stream=stream, delay=60.0):
        pass
    assert stream.getvalue() == ""


# ------------------------------------------------------------------------------ covertype
def test_covertype_walk_through(capsys, tmp_path):
    """The README walk-through: fit on the validate split, evaluate on the testing split."""
    if not COVERTYPE.is_dir():
        pytest.skip(
            "../shared/data/covertype not present: the real-data walk-through needs the "
            "project's shared data folder next to the repository"
        )
    model_path = tmp_path / "covertype.json"
    code, out, err = call(
        capsys, "fit", COVERTYPE / "covertype_validate.csv", "--target", "Cover_Type",
        "--categorical", "Soil_Type", "--standardize", "-o", model_path,
    )  # fmt: skip
    assert code == 0, err
    assert "54 features, 7 classes" in out

    code, out, err = call(
        capsys, "evaluate", model_path, COVERTYPE / "covertype_testing.csv",
        "--target", "Cover_Type",
    )  # fmt: skip
    assert code == 0, err
    accuracy = float(re.search(r"^accuracy\s+([0-9.]+)$", out, re.M).group(1))
    assert accuracy >= 0.70, out

    predictions = tmp_path / "predictions.csv"
    code, _, err = call(
        capsys, "predict", model_path, COVERTYPE / "covertype_serving.csv", "-o", predictions
    )
    assert code == 0, err
    lines = predictions.read_text().splitlines()
    assert lines[0] == "predicted_Cover_Type" and len(lines) == 1 + 50_000

    code, _, err = call(
        capsys, "evaluate", model_path, COVERTYPE / "covertype_testing.csv",
        "--target", "Cover_Typo",
    )  # fmt: skip
    assert_one_line_error(code, err, "'Cover_Typo'", "covertype_testing.csv")
