"""hlmrf.infra.settings and hlmrf.infra.cli: strict typed settings, one exit-code table."""
import errno
import io
from dataclasses import dataclass, field

import pytest

from hlmrf.errors import (DataError, InfeasibleError, OutputError, SettingsError, SolverError)
from hlmrf.inference.settings import AdmmSettings
from hlmrf.infra import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_SOLVE, run_cli,
                         settings_from_mapping)


@dataclass(frozen=True)
class S:
    n: int = 1
    x: float = 0.5
    big: float = field(default=1.0, metadata={"allow_inf": True})
    flag: bool = False
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    opt: float | None = None

    def __post_init__(self):
        if self.n < 0:
            raise SettingsError("n must be >= 0")


@pytest.mark.parametrize("key,value,want", [
    ("n", "12", 12), ("n", "1_000", 1000), ("n", 7, 7), ("x", "1e-3", 1e-3), ("x", 2, 2.0),
    ("big", "inf", float("inf")), ("flag", "yes", True), ("flag", "OFF", False), ("flag", True, True),
    ("mode", "b", "b"), ("opt", "none", None), ("opt", "0.25", 0.25)])
def test_settings_accepts(key, value, want):
    assert getattr(settings_from_mapping(S, {key: value}), key) == want


@pytest.mark.parametrize("key,value,match", [
    ("n", "2.5", "whole number"), ("n", True, "whole number"), ("n", 2.0, "whole number"),
    ("x", "inf", "finite"), ("x", "nan", "finite"), ("x", "abc", "not a number"),
    ("big", "nan", "number or inf"), ("flag", "maybe", "true, yes, on, 1, false, no, off, 0"),
    ("flag", 1, "not a boolean"), ("mode", "c", "not one of a, b"), ("mode", 3, "string"),
    ("n", "-1", "n must be >= 0"), ("nn", 1, r"unknown thing\(s\) nn; valid things are big, flag")])
def test_settings_rejects(key, value, match):
    with pytest.raises(SettingsError, match=match):
        settings_from_mapping(S, {key: value}, what="thing")


def test_admm_settings_strict():
    """Before: normalize_weights=maybe read as false, max_iter=2.5 as a ValueError message only."""
    with pytest.raises(SettingsError, match="not a boolean"):
        AdmmSettings.from_options(["normalize_weights=maybe"])
    with pytest.raises(SettingsError, match="rho"):
        AdmmSettings.from_options(["rho=inf"])
    with pytest.raises(SettingsError, match="finite"):
        AdmmSettings.from_options(["eps_rel=nan"])
    assert AdmmSettings.from_options(["gap_abs=inf"]).gap_abs == float("inf")
    assert AdmmSettings.from_options(["normalize_weights=off"]).normalize_weights is False


def _raise(exc):
    def fn():
        raise exc
    return fn


@pytest.mark.parametrize("exc,code,text", [
    (DataError("bad line", "f.txt", 3), EXIT_INPUT, "prog: error: f.txt:3: bad line"),
    (InfeasibleError("no"), EXIT_SOLVE, "prog: error: no"),
    (SolverError("diverged"), EXIT_SOLVE, "prog: error: diverged"),
    (OutputError("is a file", "/o"), EXIT_IO, "prog: error: /o: is a file"),
    (PermissionError(errno.EACCES, "Permission denied", "/x/y"), EXIT_IO,
     "prog: error: /x/y: Permission denied; choose a location"),
    (OSError(errno.ENOSPC, "No space left on device", "/d/f"), EXIT_IO,
     "prog: error: /d/f: No space left on device; free some space"),
    (MemoryError(), EXIT_IO, "prog: error: out of memory"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "prog: interrupted; no output written"),
])
def test_run_cli_table(exc, code, text):
    err = io.StringIO()
    assert run_cli("prog", _raise(exc), stderr=err) == code
    assert err.getvalue().startswith(text) and err.getvalue().count("\n") == 1


def test_run_cli_crops_and_lets_bugs_through():
    err = io.StringIO()
    assert run_cli("p", _raise(DataError("x" * 10_000_000)), stderr=err) == EXIT_INPUT
    assert len(err.getvalue()) < 5000 and "more characters)" in err.getvalue()
    assert run_cli("p", lambda: EXIT_OK) == 0
    with pytest.raises(ZeroDivisionError):
        run_cli("p", lambda: 1 // 0)


def test_import_hlmrf_infra_is_light():
    import subprocess
    import sys

    code = ("import sys, hlmrf, hlmrf.infra; "
            "print([m for m in ('torch', 'cvxpy', 'scipy.sparse.linalg') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "torch" not in out.stdout and "cvxpy" not in out.stdout
