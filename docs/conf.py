"""Sphinx configuration: the API reference is generated from the docstrings.

``make docs`` builds it with warnings as errors, and ``make test`` runs that,
so a docstring that Sphinx cannot read or a broken page fails the gate.
"""

from __future__ import annotations

import trioproc

project = "trioproc"
author = "trioproc developers"
copyright = "trioproc developers"
release = trioproc.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build"]

# Docstrings are Google style (STYLE.md 16), and `single backticks` in them
# name Python objects: linked where the target is in these pages, plain text
# where it is not (a parameter, the standard library, Trio). Nitpicky mode is
# off because resolving those needs intersphinx inventories fetched from the
# network at build time; -W still fails on a docstring that does not parse, a
# name that no longer imports, or a broken page.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Cancellation", "notes_style"), ("Errors", "notes_style")]
default_role = "py:obj"
nitpicky = False

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_theme_options = {
    "description": "Child processes under Trio's structured concurrency"
}
