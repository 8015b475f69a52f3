"""Optional dependencies: the missing-extra error and the extras of pyproject.toml.

Outside reference: pyproject.toml itself (read with tomllib), which is what pip installs.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from softmaxreg import _optional

PYPROJECT = tomllib.loads(
    (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
)
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def _names(requirements) -> set[str]:
    """Distribution names of requirement strings, self-references expanded."""
    names = set()
    for requirement in requirements:
        if requirement.startswith("softmaxreg["):
            for extra in requirement[len("softmaxreg[") : -1].split(","):
                names |= _names(EXTRAS[extra])
        else:
            name = requirement.split(";")[0]
            for stop in "<>=![ ":
                name = name.split(stop)[0]
            names.add(name.lower())
    return names


def test_missing_module_names_the_pip_line():
    with pytest.raises(ImportError) as caught:
        _optional.require("softmaxreg_no_such_module", "testing this", extra="plot")
    assert isinstance(caught.value, _optional.MissingExtraError)
    assert str(caught.value) == (
        'testing this needs softmaxreg_no_such_module, which is not installed: '
        'pip install "softmaxreg[plot]"'
    )


def test_a_broken_install_keeps_its_own_error(tmp_path, monkeypatch):
    """A package that is there but fails on a module of its own is no missing extra."""
    package = tmp_path / "softmaxreg_broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("import softmaxreg_absent_inner_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        _optional.require("softmaxreg_broken_pkg", "testing this")
    assert not isinstance(caught.value, _optional.MissingExtraError)
    assert caught.value.name == "softmaxreg_absent_inner_dependency"
    sys.modules.pop("softmaxreg_broken_pkg", None)


def test_every_module_maps_to_an_extra_that_installs_it():
    distribution = {
        "matplotlib_fontja": "matplotlib-fontja",
        "array_api_compat": "array-api-compat",
    }
    for module, extra in _optional.EXTRA_OF_MODULE.items():
        assert extra in EXTRAS, (module, extra)
        assert distribution.get(module, module) in _names(EXTRAS[extra]), (module, extra)


def test_all_has_every_user_extra_and_dev_has_all_and_docs():
    user = {"plot", "io", "inference", "onnx", "dask", "gpu", "formula", "cli"}
    everything = set().union(*(_names(EXTRAS[extra]) for extra in user))
    assert _names(EXTRAS["all"]) == everything
    assert {"onnxruntime", "formulaic", "pandas", "matplotlib", "pyarrow"} <= everything
    assert _names(EXTRAS["all"]) | _names(EXTRAS["docs"]) <= _names(EXTRAS["dev"])
    base = _names(PYPROJECT["project"]["dependencies"])
    assert base == {"numpy", "scipy", "scikit-learn", "joblib"}  # joblib: scikit-learn's own
