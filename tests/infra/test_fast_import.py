"""``hlmrf.infra.fast_import``: scipy.sparse imported without numpy.f2py and numpy.testing, and
numpy left as it was. Each case runs in a fresh interpreter (the import happens once per process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPORT = """
import json, sys, numpy
import scipy.sparse as sp
loaded = [m for m in ("numpy.f2py", "numpy.testing") if m in sys.modules]
public = [n in numpy.__all__ for n in ("f2py", "testing", "test")] + [n in dir(numpy) for n in ("f2py", "testing")]
works = float((sp.csr_matrix([[1.0, 2.0]]) @ [3.0, 4.0])[0])
import numpy.testing
print(json.dumps({"loaded": loaded, "public": public, "works": works,
                  "testing": numpy.testing.assert_allclose is not None}))
"""


def _run(before: str) -> dict:
    out = subprocess.run([sys.executable, "-c", before + "\n" + REPORT], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_hlmrf_skips_numpy_test_modules_and_leaves_numpy_as_it_was():
    got = _run("import hlmrf")
    assert got["loaded"] == []  # neither module was imported by importing hlmrf
    assert got["public"] == [True] * 5  # numpy's __all__ and dir() are put back
    assert got["works"] == 11.0 and got["testing"]


def test_already_loaded_test_modules_take_the_usual_path():
    got = _run("import numpy.testing\nimport hlmrf")
    # scipy's clone then loads numpy.f2py as it always did
    assert got["loaded"] == ["numpy.f2py", "numpy.testing"]
    assert got["public"] == [True] * 5 and got["works"] == 11.0


def test_numpy_is_put_back_when_the_import_fails():
    code = """
import sys, json, numpy
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
    print(json.dumps({"error": str(e), "all": "f2py" in numpy.__all__, "dir": "testing" in dir(numpy)}))
"""
    path = Path(__file__).resolve().parents[2] / "hlmrf" / "infra" / "fast_import.py"
    out = subprocess.run([sys.executable, "-c", f"PATH = {str(path)!r}\n" + code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"error": "refused for the test", "all": True, "dir": True}
