"""Every code block of README.md runs as pasted, in a scratch folder.

Each ```python block runs on its own, on data that scikit-learn and statsmodels ship (never
``../shared``); a block that needs an optional package the environment lacks is skipped,
naming it. The command-line tour runs on the tables it names, made here from iris; the
remaining shell blocks are the pip and make lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def test_readme_has_its_sections():
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:3] == ["Install", "Quick start", "A first model"]
    assert "Solvers and the stopping rule" in headings
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^```sh\n(.*?)^```", quick, re.M | re.S)
    assert commands == ["make demo\nmake test\n"]
    assert 'pip install "softmaxreg[all]"' in text and "pip install softmaxreg" in text
    assert "../shared" not in text
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(code, tmp_path, monkeypatch):
    for module in re.findall(r"^(?:import|from) (\w+)", code, re.M):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    namespace = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    import matplotlib.pyplot as plt

    plt.close("all")


SH_BLOCKS = re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def test_readme_command_line_block_runs(tmp_path, monkeypatch, capsys):
    """The command-line tour on the tables it names (made here from iris); the other shell
    blocks are the install and make lines, which are not run here."""
    import shlex

    import numpy as np

    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from sklearn.datasets import load_iris

    from softmaxreg import cli

    (tour,) = [block for block in SH_BLOCKS if block.startswith("softmaxreg ")]
    others = [block for block in SH_BLOCKS if block is not tour]
    for block in others:
        for line in block.strip().splitlines():
            assert line.split()[0] in ("pip", "make"), line
    iris = load_iris(as_frame=True)
    frame = iris.data.copy()
    frame["species"] = np.asarray(iris.target_names)[iris.target]
    frame.insert(0, "row_id", [f"flower-{i}" for i in range(len(frame))])
    shuffled = frame.sample(frac=1.0, random_state=0)
    train, test = shuffled.iloc[:120], shuffled.iloc[120:]
    # row_id is an identifier: the tour's fit reads every column, so train has none
    train.drop(columns="row_id").to_csv(tmp_path / "train.csv", index=False)
    test.drop(columns="row_id").to_csv(tmp_path / "test.csv", index=False)
    test.drop(columns="species").to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    for line in tour.strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "softmaxreg"
        code = cli.main(argv[1:])
        captured = capsys.readouterr()
        assert code == 0, (line, captured.err)
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert list(predictions.columns[:2]) == ["row_id", "predicted_species"]
    for name in ("model.json", "confusion.png", "best.json", "model.onnx"):
        assert (tmp_path / name).stat().st_size > 0, name
