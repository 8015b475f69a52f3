"""Sphinx configuration of the softmaxreg documentation site (``make docs``).

Built offline: no intersphinx, no remote images. Examples in ``docs/examples`` are run by
sphinx-gallery and their figures shown in the gallery.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

from softmaxreg import __version__  # noqa: E402

project = "softmaxreg"
author = "the softmaxreg developers"
copyright = "the softmaxreg developers, BSD-3-Clause"
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "images", "make_figures.py", "**/GALLERY_HEADER.rst"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# benchmarks/RESULTS.md is included as written by the benchmark scripts; its heading levels
# are theirs to choose
suppress_warnings = ["myst.header"]

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "write_computation_times": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"softmaxreg {version}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []
templates_path = ["_templates"]
html_show_sourcelink = False
