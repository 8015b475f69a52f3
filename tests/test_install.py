"""``pip install softmaxreg`` as a user gets it: the wheel in a fresh virtual environment.

The wheel is built from this checkout without network (``pip wheel --no-deps
--no-build-isolation``: the setuptools of the running environment) and installed with
``--no-index`` into a new environment that has no site packages of its own but one ``.pth``
file making the *base* dependencies visible: numpy, scipy, scikit-learn (with joblib and
threadpoolctl), linked from the running environment. pandas, matplotlib, onnx and the rest
are absent there, as after a plain ``pip install softmaxreg``.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = ("numpy", "scipy", "scikit-learn", "joblib")  # what pyproject.toml's dependencies name


def _closure(names) -> set[str]:
    """The distributions ``names`` need, recursively (requirements without an extra)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - pip always vendors it
        from pip._vendor.packaging.requirements import Requirement
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def _run(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


def _base_packages(target: Path) -> None:
    """Link the base dependencies (code, bundled libraries, metadata) into ``target``."""
    site = Path(sysconfig.get_paths()["purelib"])
    for distribution in sorted(_closure(BASE)):
        files = importlib.metadata.distribution(distribution).files or []
        for top in {Path(str(entry)).parts[0] for entry in files}:
            source = site / top
            if source.exists() and top != ".." and not (target / top).exists():
                (target / top).symlink_to(source)
    assert not (target / "pandas").exists()


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("install")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "-q", "-w", str(folder / "dist"), str(ROOT),
    )  # fmt: skip
    if built.returncode != 0:
        pytest.skip(
            "no network-free wheel build here (pip wheel --no-build-isolation needs "
            f"setuptools in the test environment): {built.stderr.strip()[-300:]}"
        )
    (wheel,) = (folder / "dist").glob("softmaxreg-*.whl")
    env = folder / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(env)).returncode == 0
    python = env / "bin" / "python"
    env_site = Path(
        _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        .stdout.strip()
    )
    base = folder / "base"
    base.mkdir()
    _base_packages(base)
    (env_site / "base-dependencies.pth").write_text(f"{base}\n")
    installed = _run(
        sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
        "--no-deps", "-q", str(wheel), env=_clean_environ(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return env


def _clean_environ() -> dict:
    # nothing of the test run's own paths may leak into the fresh environment
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH",)}


def test_wheel_declares_only_the_base_dependencies(fresh_env):
    wheel = next((fresh_env.parent / "dist").glob("softmaxreg-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith("/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    required = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist")]
    unconditional = sorted(req.split(">")[0].split("=")[0] for req in required if ";" not in req)
    assert unconditional == ["joblib", "numpy", "scikit-learn", "scipy"]
    extras = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra")}
    assert {"all", "cli", "plot", "io", "onnx", "dask", "formula", "docs", "dev"} <= extras


def test_estimator_works_with_only_the_base_dependencies(fresh_env):
    script = (
        "import sys\n"
        "from sklearn.datasets import load_iris\n"
        "from softmaxreg import SoftmaxRegression\n"
        "X, y = load_iris(return_X_y=True)\n"
        "model = SoftmaxRegression().fit(X, y)\n"
        "assert model.score(X, y) > 0.95\n"
        "for name in ('pandas', 'matplotlib', 'onnx', 'dask'):\n"
        "    assert name not in sys.modules\n"
        "try:\n"
        "    import pandas\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('pandas is visible in the fresh environment')\n"
        "try:\n"
        "    model.to_onnx()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = _run(str(fresh_env / "bin" / "python"), "-c", script, env=_clean_environ())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        'ONNX export needs onnx, which is not installed: pip install "softmaxreg[onnx]"'
    )


def test_cli_names_the_install_line_of_its_extra(fresh_env, tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b,y\n1,2,x\n3,4,z\n5,1,x\n")
    result = _run(
        str(fresh_env / "bin" / "softmaxreg"), "fit", str(table), "--target", "y",
        "-o", str(tmp_path / "m.json"), env=_clean_environ(),
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith('pip install "softmaxreg[cli]"'), lines[0]
    assert "Traceback" not in result.stderr
    help_text = _run(str(fresh_env / "bin" / "softmaxreg"), "--help", env=_clean_environ())
    assert help_text.returncode == 0 and "export-onnx" in help_text.stdout
