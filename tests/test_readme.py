"""Every ```python block of README.md runs as pasted, each on its own, in a scratch folder.

The blocks use data that scikit-learn and statsmodels ship, never ``../shared``; a block
that needs an optional package the environment lacks is skipped, naming it.
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
