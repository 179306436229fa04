"""Importing scipy.sparse without numpy's test runner and Fortran-wrapper generator.

scipy vendors ``array_api_compat``, whose numpy namespace is built by cloning numpy's: it runs
``from numpy import *`` and reads every name in ``dir(numpy)``. numpy 2 loads ``numpy.f2py`` and
``numpy.testing`` (and its ``test`` runner) only on first access, but lists them in ``__all__``
and ``__dir__``, so the clone imports them: about 85 ms of the 150 ms that importing
scipy.sparse takes on the development machine (``python -X importtime``, numpy 2.4, scipy 1.17),
for modules that no array code uses. That is a tenth of a whole ``hlmrf-infer`` run on a model of
370k potentials, and of every ``vqa-masks`` start.

:func:`import_scipy_sparse` imports scipy.sparse with those three names left out of numpy's
``__all__`` and ``__dir__`` while it imports, and puts both back. Afterwards numpy is as it was
(``numpy.testing`` imports as usual when asked for); only scipy's vendored copy of the namespace
lacks the three names, and scipy reads ``xp.testing`` only for CuPy and torch namespaces. When
numpy's attributes are not as expected, or either module is already loaded (someone has paid for
it), scipy.sparse is imported as usual.
"""
from __future__ import annotations

import importlib
import sys

LAZY = ("f2py", "testing", "test")
"""numpy's lazily loaded names that the clone would load."""


def import_scipy_sparse() -> None:
    """Import scipy.sparse (see the module docstring); a no-op once it is imported."""
    if "scipy.sparse" in sys.modules:
        return
    import numpy as np

    names, lazy_dir = getattr(np, "__all__", None), np.__dict__.get("__dir__")
    if (not isinstance(names, list) or not callable(lazy_dir)
            or any(f"numpy.{name}" in sys.modules for name in LAZY)):
        importlib.import_module("scipy.sparse")
        return
    np.__all__ = [name for name in names if name not in LAZY]
    np.__dir__ = lambda: [name for name in lazy_dir() if name not in LAZY]
    try:
        importlib.import_module("scipy.sparse")
    finally:
        np.__all__ = names
        np.__dir__ = lazy_dir
