"""The command line as a newcomer meets it: run as a subprocess on a real table.

The table is the first 3,000 rows of covertype (``../shared/data``) where present, otherwise a
generated table of the same shape of columns (numbers, a text column, an integer code, the
target). Outside references: pandas/pyarrow reading back what the CLI wrote, scikit-learn's
``LogisticRegression``/``LogisticRegressionCV`` on a design built here, onnxruntime running
the exported graph.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from softmaxreg import _cli_tabular, cli

ROOT = Path(__file__).resolve().parents[1]
COVERTYPE = ROOT / ".." / "shared" / "data" / "covertype" / "covertype_validate.csv"
N_ROWS = 3000


def run(*argv, stdin=None) -> subprocess.CompletedProcess:
    """``softmaxreg ARGV`` in a fresh interpreter (this checkout's sources first)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "softmaxreg.cli", *map(str, argv)],
        capture_output=True, text=True, env=env, timeout=300, stdin=stdin,
    )  # fmt: skip


def call(capsys, *argv) -> subprocess.CompletedProcess:
    """``softmaxreg ARGV`` in this process (cheaper), with the same result type as ``run``."""
    try:
        code = cli.main([str(arg) for arg in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


def assert_error(result, code: int, *needles: str) -> str:
    """Exit ``code``, stderr exactly one line holding every needle, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def generated_table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "Elevation": rng.normal(2900, 280, n).round(),
            "Slope": rng.integers(0, 45, n),
            "Horizontal_Distance_To_Roadways": rng.gamma(2.0, 1200, n).round(),
            "Hillshade_9am": rng.integers(100, 255, n),
            "Wilderness_Area": rng.choice(["Rawah", "Comanche Peak", "Cache la Poudre"], n),
            "Soil_Type": rng.choice([2703, 4703, 7102, 7202, 7745], n),
        }
    )
    score = np.column_stack(
        [
            (frame.Elevation - 2900) / 150,
            -(frame.Elevation - 2900) / 150 + (frame.Wilderness_Area == "Rawah"),
            frame.Slope / 20 - frame.Horizontal_Distance_To_Roadways / 3000,
        ]
    )
    score += rng.gumbel(size=score.shape)
    frame["Cover_Type"] = score.argmax(axis=1) + 1
    return frame


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    if COVERTYPE.is_file():
        frame = pd.read_csv(COVERTYPE, nrows=N_ROWS)
        frame = frame[frame.columns.drop("Cover_Type").tolist() + ["Cover_Type"]]
    else:
        frame = generated_table(N_ROWS)
    frame.insert(0, "row_id", [f"r{i:05d}" for i in range(len(frame))])
    return frame


@pytest.fixture(scope="module")
def files(table, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_traps")
    paths = {"dir": folder, "train": folder / "train.csv", "model": folder / "model.json"}
    table.to_csv(paths["train"], index=False)
    # in-process (cheaper); fit runs as a subprocess in the progress tests
    try:
        code = cli.main([
            "fit", str(paths["train"]), "--target", "Cover_Type", "--drop", "row_id",
            "--categorical", "Soil_Type", "--standardize", "-o", str(paths["model"]), "--quiet",
        ])  # fmt: skip
    except SystemExit as exc:  # pragma: no cover - a usage error
        code = exc.code
    fitted = subprocess.CompletedProcess([], code, "", "")
    assert fitted.returncode == 0
    return paths


# ------------------------------------------------------------------------------ stray values
def test_numeric_column_with_a_few_stray_values_is_an_error(capsys, table, files):
    broken = table.astype({"Slope": object})
    broken.loc[[5, 50], "Slope"] = "?"
    broken.loc[700, "Slope"] = "abc"
    path = files["dir"] / "stray.csv"
    broken.to_csv(path, index=False)
    model = files["dir"] / "stray.json"
    result = run("fit", path, "--target", "Cover_Type", "--drop", "row_id", "-o", model)
    line = assert_error(result, 2, "'Slope'", "'?' (2 rows)", "'abc' (1 row)")
    assert "--categorical Slope" in line and "categorical=" not in line
    assert not model.exists()

    forced = call(
        capsys, "fit", path, "--target", "Cover_Type", "--drop", "row_id", "--categorical", "Slope",
        "--drop", "Soil_Type", "-o", model, "--quiet",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    distinct = broken["Slope"].astype(str).nunique()
    n_features = int(re.search(r"-> (\d+) features", forced.stdout).group(1))
    numeric = table.drop(columns=["row_id", "Slope", "Soil_Type", "Cover_Type"])
    n_other = sum(
        1 if pd.api.types.is_numeric_dtype(numeric[name]) else numeric[name].nunique()
        for name in numeric
    )
    assert n_features == distinct + n_other


# ------------------------------------------------------------------------------ -o formats
def test_predict_output_format_follows_the_suffix(capsys, table, files):
    expected = pd.read_csv(
        pd.io.common.StringIO(
            call(capsys, "predict", files["model"], files["train"], "--proba").stdout
        )
    )
    for suffix in (".parquet", ".tsv", ".csv.gz"):
        out = files["dir"] / f"predictions{suffix}"
        argv = ("predict", files["model"], files["train"], "--proba", "-o", out)
        if suffix == ".parquet":  # the subprocess run: also carries the id column through
            result = run(*argv, "--id", "row_id")
        else:
            result = call(capsys, *argv)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        if suffix == ".parquet":
            assert out.read_bytes()[:4] == b"PAR1"
            written = pd.read_parquet(out)
            assert written.pop("row_id").tolist() == table["row_id"].tolist()
        else:
            written = pd.read_csv(out, sep="\t" if suffix == ".tsv" else ",")
        pd.testing.assert_frame_equal(written, expected, check_dtype=False, rtol=1e-12)


def test_predict_output_with_an_unknown_suffix_is_an_error(capsys, files):
    out = files["dir"] / "predictions.xlsx"
    result = call(capsys, "predict", files["model"], files["train"], "-o", out)
    assert_error(result, 2, "predictions.xlsx")
    assert not out.exists()


# ------------------------------------------------------------------------------ columns, --id
def test_predicted_columns_and_carried_id(capsys, table, files):
    result = call(capsys, "predict", files["model"], files["train"], "--proba", "--id", "row_id")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(pd.io.common.StringIO(result.stdout))
    classes = sorted(table["Cover_Type"].unique())
    assert list(out.columns) == [
        "row_id", "predicted_Cover_Type", *[f"proba_{c}" for c in classes]
    ]  # fmt: skip
    assert out["row_id"].tolist() == table["row_id"].tolist()
    proba = out[[f"proba_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(
        out["predicted_Cover_Type"].to_numpy(), np.array(classes)[proba.argmax(axis=1)]
    )
    assert_error(
        call(capsys, "predict", files["model"], files["train"], "--id", "nope"), 2, "--id", "'nope'"
    )


# ------------------------------------------------------------------------------ progress
def test_progress_lines_show_iteration_objective_and_gradient(files):
    result = run(
        "fit", files["train"], "--target", "Cover_Type", "--drop", "row_id,Soil_Type",
        "--standardize", "--progress-every", "0", "-o", files["dir"] / "progress.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pattern = re.compile(
        r"^softmaxreg fit: fitting \d+ rows, iteration (\d+), objective (\S+), "
        r"gradient norm (\S+), \d+ s$"
    )
    matches = [pattern.match(line) for line in result.stderr.splitlines()]
    found = [match for match in matches if match]
    assert len(found) >= 3, result.stderr
    iterations = [int(match.group(1)) for match in found]
    assert iterations == sorted(iterations)
    objectives = np.array([float(match.group(2)) for match in found])
    assert np.all(np.diff(objectives) <= 1e-12 * np.abs(objectives[:-1]))
    n_iter = int(re.search(r": (\d+) iterations", result.stdout).group(1))
    assert iterations[-1] == n_iter


def test_progress_on_a_terminal_is_one_line_redrawn(files):
    """stderr on a pseudo-terminal: the status is redrawn in place (carriage return, erase
    line) and erased at the end, so the terminal keeps no progress lines."""
    import pty
    import select

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "softmaxreg.cli", "fit", str(files["train"]), "--target",
         "Cover_Type", "--drop", "row_id,Soil_Type", "--progress-every", "0",
         "-o", str(files["dir"] / "tty.json")],
        stdout=subprocess.PIPE, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    received = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0
    process.stdout.close()
    text = received.decode()
    assert "\n" not in text.replace("\r\n", "\n").strip("\n"), text
    frames = [frame for frame in text.split("\r\x1b[K") if frame]
    assert any(re.search(r"iteration \d+, objective \S+, gradient norm \S+", f) for f in frames)
    assert text.endswith("\r\x1b[K")


# ------------------------------------------------------------------------------ options
def test_every_option_has_help_and_shows_its_default():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    for name, subparser in subparsers.choices.items():
        text = subparser.format_help()
        for action in subparser._actions:
            if isinstance(action, cli.argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            if action.option_strings and action.default not in (None, False):
                assert f"default: {action.default}" in " ".join(text.split()), (name, action.dest)


def test_output_flag_is_the_same_in_every_command(capsys, tmp_path):
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    for name, subparser in subparsers.choices.items():
        flags = {flag for action in subparser._actions for flag in action.option_strings}
        if name in ("demo", "fit", "cv", "predict", "plot", "export-onnx"):
            assert {"-o", "--output"} <= flags, name
        assert "--out" not in flags, name
    result = call(capsys, "demo", "-o", tmp_path / "demo.png")
    assert result.returncode == 0, result.stderr
    assert "Training accuracy: 0.917" in result.stdout
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ SIGPIPE
def test_closed_pipe_ends_quietly(files):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "softmaxreg.cli", "predict", str(files["model"]),
         str(files["train"]), "--proba", "--id", "row_id"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert first.startswith(b"row_id,predicted_Cover_Type")
    assert stderr == ""


# ------------------------------------------------------------------------------ messages
@pytest.mark.parametrize(
    ("options", "needles"),
    [
        (["--penalty", "elasticnet"], ["--penalty elasticnet", "--l1-ratio"]),
        (["--penalty", "l1", "--solver", "lbfgs"], ["--solver lbfgs", "--penalty l1"]),
        (["--max-categories", "2", "--categorical", "Soil_Type"], ["--max-categories"]),
    ],
)
def test_messages_use_the_command_lines_flags(capsys, files, options, needles):
    runner = run if options[1] == "elasticnet" else functools.partial(call, capsys)
    result = runner(
        "fit", files["train"], "--target", "Cover_Type", "--drop", "row_id", *options,
        "-o", files["dir"] / "bad.json",
    )  # fmt: skip
    line = assert_error(result, 2, *needles)
    assert not re.search(r"\b(l1_ratio|max_categories|penalty=|solver=)", line), line
    assert "np." not in line


def test_cli_words_rewrites_python_spellings():
    words = _cli_tabular.in_cli_words
    assert words("Consider penalty='l2'.") == "Consider --penalty l2."
    assert words("got np.int64(9999) values") == "got 9999 values"
    assert (
        words("max_iter=100 reached; raise max_iter") == "--max-iter 100 reached; raise --max-iter"
    )


# ------------------------------------------------------------------------------ figures
def _captured_figure(monkeypatch, argv):
    """Run ``softmaxreg plot`` in-process and keep what its figure showed."""
    seen = {}

    def keep(figure, path):
        ax = figure.axes[0]
        seen.update(
            title=ax.get_title(), xlabel=ax.get_xlabel(), ylabel=ax.get_ylabel(),
            xlim=ax.get_xlim(), ylim=ax.get_ylim(), axes=figure.axes,
            image=ax.images[0].get_array() if ax.images else None,
        )  # fmt: skip
        Path(path).write_bytes(b"")

    monkeypatch.setattr(_cli_tabular, "save_figure", keep)
    assert cli.main([str(arg) for arg in argv]) == 0
    return seen


def test_figures_of_a_standardised_model_are_in_the_columns_units(
    capsys, table, files, monkeypatch
):
    columns = ["Elevation", "Horizontal_Distance_To_Roadways"]
    two = table[[*columns, "Cover_Type"]].iloc[:1000]
    path, model = files["dir"] / "two.csv", files["dir"] / "two.json"
    two.to_csv(path, index=False)
    fitted = call(
        capsys, "fit", path, "--target", "Cover_Type", "--standardize", "-o", model, "--quiet",
        "--tol", "1e-10",
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    png = files["dir"] / "regions.png"
    result = run("plot", model, path, "--kind", "decision-regions", "-o", png)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"

    seen = _captured_figure(monkeypatch, ["plot", model, path, "--kind", "decision_regions",
                                          "-o", files["dir"] / "x.png"])  # fmt: skip
    assert (seen["xlabel"], seen["ylabel"]) == tuple(columns)
    low, high = two[columns[0]].min(), two[columns[0]].max()
    span = high - low
    assert seen["xlim"] == pytest.approx((low - 0.1 * span, high + 0.1 * span))
    assert seen["title"] == "Decision regions: two.json on two.csv"

    argv = ["plot", model, path, "--kind", "coefficients", "-o", files["dir"] / "c.png"]
    seen = _captured_figure(monkeypatch, [*argv, "--title", "Mine"])
    scaler = StandardScaler().fit(two[columns])
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(
        scaler.transform(two[columns]), two["Cover_Type"]
    )
    per_unit = reference.coef_ / scaler.scale_
    np.testing.assert_allclose(np.asarray(seen["image"]), per_unit, rtol=1e-3, atol=1e-9)
    assert seen["title"] == "Mine"
    colorbar = seen["axes"][1]
    assert colorbar.get_ylabel() == "coefficient (per unit of the column)"


def test_plot_kind_needing_two_columns_says_so(capsys, files):
    result = call(capsys, "plot", files["model"], files["train"], "--kind", "decision_regions",
                 "-o", files["dir"] / "r.png")  # fmt: skip
    assert_error(result, 2, "--kind decision_regions", "2 numeric columns")


# ------------------------------------------------------------------------------ cv, onnx
def test_cv_chooses_the_C_of_scikit_learn(table, files):
    columns = ["Elevation", "Slope", "Horizontal_Distance_To_Roadways", "Hillshade_9am"]
    numeric = table[[*columns, "Cover_Type"]].iloc[:1200]
    path, model = files["dir"] / "numeric.csv", files["dir"] / "cv.json"
    numeric.to_csv(path, index=False)
    Cs = [1e-3, 1e-1, 10.0]
    result = run(
        "cv", path, "--target", "Cover_Type", "--standardize", "--Cs", ",".join(map(str, Cs)),
        "--cv", "3", "--scoring", "neg_log_loss", "-o", model, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    X = StandardScaler().fit_transform(numeric[columns])
    reference = LogisticRegressionCV(
        Cs=Cs, cv=StratifiedKFold(3), scoring="neg_log_loss", tol=1e-8, max_iter=10_000,
        use_legacy_attributes=False,
    ).fit(X, numeric["Cover_Type"])  # fmt: skip
    rows = re.findall(r"C=(\S+)\s+(-?[0-9.]+) \+- [0-9.]+(  <- best)?", result.stdout)
    assert len(rows) == len(Cs)
    printed = np.array([float(score) for _, score, _ in rows])
    np.testing.assert_allclose(printed, reference.scores_.mean(axis=0).ravel(), atol=2e-4)
    best = [float(C) for C, _, mark in rows if mark]
    assert best == pytest.approx([reference.C_])
    import softmaxreg

    assert softmaxreg.load(model).estimator_.C == pytest.approx(reference.C_)


def test_export_onnx_matches_predict_under_onnxruntime(table, files):
    onnxruntime = pytest.importorskip("onnxruntime")
    import softmaxreg

    out = files["dir"] / "model.onnx"
    result = run("export-onnx", files["model"], "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"ONNX graph written to {out}" in result.stdout
    model = softmaxreg.load(files["model"])
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rows = table.iloc[:500]
    _, proba = session.run(None, model.onnx_inputs(rows))
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-5)


def test_export_onnx_of_a_missing_file(capsys, files):
    result = call(capsys, "export-onnx", files["dir"] / "missing.json", "-o", files["dir"] / "x")
    assert_error(result, 2, "missing.json")
