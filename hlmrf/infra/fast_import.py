"""Importing scipy.sparse without numpy's test, Fortran-wrapper and legacy subpackages.

scipy vendors ``array_api_compat``, whose numpy namespace is built by cloning numpy's: it runs
``from numpy import *`` and reads every name in ``dir(numpy)``. numpy 2 loads many subpackages
only on first access (``numpy.f2py``, ``numpy.testing``, ``numpy.ma``, ``numpy.polynomial``, ...)
but lists them in ``__all__`` and ``__dir__``, so the clone imports them all: about 105 ms of the
150 ms that importing scipy.sparse takes on the development machine (``python -X importtime``,
numpy 2.4, scipy 1.17), for modules that no array code here uses. That is a tenth of a whole
``hlmrf-infer`` run on a model of 370k potentials, and of every ``vqa-masks`` start.

:func:`import_scipy_sparse` imports scipy.sparse with the names in :data:`LAZY` whose modules are
not loaded yet left out of numpy's ``__all__`` and ``__dir__`` while it imports, and puts both
back. Afterwards numpy is as it was (each subpackage imports as usual when asked for); only
scipy's vendored copy of the namespace lacks those names, and scipy reads none of them through it
(it reads ``xp.testing`` only for CuPy and torch namespaces). When numpy's attributes are not as
expected, or all of them are loaded already, scipy.sparse is imported as usual.
"""
from __future__ import annotations

import importlib
import sys

LAZY = ("f2py", "testing", "ma", "polynomial", "ctypeslib", "rec", "char", "matlib", "strings")
"""numpy's lazily loaded subpackages that the clone would load and nothing here needs at import
(``linalg`` and ``fft``, which the namespace wraps, and ``random`` and ``typing`` are left as
they are)."""


def import_scipy_sparse() -> None:
    """Import scipy.sparse (see the module docstring); a no-op once it is imported."""
    if "scipy.sparse" in sys.modules:
        return
    import numpy as np

    names, lazy_dir = getattr(np, "__all__", None), np.__dict__.get("__dir__")
    hide = {name for name in LAZY if f"numpy.{name}" not in sys.modules}
    if not isinstance(names, list) or not callable(lazy_dir) or not hide:
        importlib.import_module("scipy.sparse")
        return
    np.__all__ = [name for name in names if name not in hide]
    np.__dir__ = lambda: [name for name in lazy_dir() if name not in hide]
    try:
        importlib.import_module("scipy.sparse")
    finally:
        np.__all__ = names
        np.__dir__ = lazy_dir
