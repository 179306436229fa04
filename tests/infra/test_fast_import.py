"""``hlmrf.infra.fast_import``: scipy.sparse imported without numpy's lazily loaded test, Fortran
and legacy subpackages, and numpy left as it was. Each case runs in a fresh interpreter (the
import happens once per process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("numpy.f2py", "numpy.testing", "numpy.ma", "numpy.polynomial")

REPORT = f"""
import json, sys, numpy
import scipy.sparse as sp
loaded = [m for m in {HEAVY!r} if m in sys.modules]
names = (sorted(numpy.__all__), dir(numpy))  # __all__ is built from a set: its order varies
works = float((sp.csr_matrix([[1.0, 2.0]]) @ [3.0, 4.0])[0])
import numpy.testing, numpy.ma
print(json.dumps({{"loaded": loaded, "names": names, "works": works,
                  "usable": bool(numpy.ma.masked_array([1.0]).sum() == 1.0)}}))
"""


def _run(before: str) -> dict:
    out = subprocess.run([sys.executable, "-c", before + "\n" + REPORT], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _numpy_names() -> list:
    out = subprocess.run([sys.executable, "-c", "import json, numpy; print(json.dumps((sorted(numpy.__all__), dir(numpy))))"],
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


def test_import_hlmrf_skips_numpy_subpackages_and_leaves_numpy_as_it_was():
    got = _run("import hlmrf")
    assert got["loaded"] == []  # none of them was imported by importing hlmrf
    assert got["names"] == _numpy_names()  # numpy's __all__ and dir() are put back
    assert got["works"] == 11.0 and got["usable"]


def test_subpackages_already_loaded_stay_visible():
    got = _run("import numpy.testing\nimport hlmrf")
    assert got["loaded"] == ["numpy.testing"]  # the others are still skipped
    assert got["names"] == _numpy_names() and got["works"] == 11.0


def test_numpy_is_put_back_when_the_import_fails():
    code = """
import sys, json, numpy
before = (list(numpy.__all__), dir(numpy))
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "scipy.sparse":
            raise ImportError("refused for the test")
sys.meta_path.insert(0, Refuse())
import importlib.util  # the module alone: importing hlmrf would run it already
spec = importlib.util.spec_from_file_location("fast_import", PATH)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
try:
    mod.import_scipy_sparse()
except ImportError as e:
    print(json.dumps({"error": str(e), "same": (list(numpy.__all__), dir(numpy)) == before}))
"""
    path = Path(__file__).resolve().parents[2] / "hlmrf" / "infra" / "fast_import.py"
    out = subprocess.run([sys.executable, "-c", f"PATH = {str(path)!r}\n" + code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"error": "refused for the test", "same": True}
