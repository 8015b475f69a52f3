"""Optional dependencies: imported when a feature first needs them, with the install line.

``pip install softmaxreg`` gives the estimator (NumPy, SciPy, scikit-learn); tables, figures,
ONNX, Dask and formulas come with extras. Every lazy import of an optional package goes
through :func:`require`, so a missing one always fails the same way: an ``ImportError``
that names the feature and the exact ``pip install`` line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional top-level module (see pyproject.toml).
EXTRA_OF_MODULE = {
    "pandas": "io",
    "pyarrow": "io",
    "matplotlib": "plot",
    "matplotlib_fontja": "plot",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "dask": "dask",
    "distributed": "dask",
    "formulaic": "formula",
    "array_api_compat": "gpu",
}

#: The distribution name of a module, where it differs from the module's.
_DISTRIBUTION = {"matplotlib_fontja": "matplotlib-fontja", "array_api_compat": "array-api-compat"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def install_line(extra: str) -> str:
    """The shell line that installs ``extra``: ``pip install "softmaxreg[extra]"``."""
    return f'pip install "softmaxreg[{extra}]"'


def require(module: str, feature: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"pandas"``, ``"dask.array"``) or say how to install it.

    Parameters
    ----------
    module : str
        Dotted module name.
    feature : str
        What needs it, in words ("reading tables"), for the message.
    extra : str, optional
        The softmaxreg extra that installs it; default from :data:`EXTRA_OF_MODULE`.

    Returns
    -------
    module

    Raises
    ------
    MissingExtraError
        An ``ImportError`` such as ``reading tables needs pandas, which is not installed:
        pip install "softmaxreg[io]"``.
    """
    top = module.split(".")[0]
    extra = extra or EXTRA_OF_MODULE.get(top, "all")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing package is an install problem; a broken install keeps its own error.
        missing = getattr(exc, "name", None)
        if missing is not None and missing.split(".")[0] != top:
            raise
        package = _DISTRIBUTION.get(top, top)
        raise MissingExtraError(
            f"{feature} needs {package}, which is not installed: {install_line(extra)}"
        ) from exc
