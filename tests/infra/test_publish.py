"""hlmrf.infra.publish: atomic files and all-or-nothing folders (modes, failures, kills, races)."""
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hlmrf.errors import OutputError
from hlmrf.infra import publish
from hlmrf.infra.publish import MANIFEST, FileSet, atomic_write

from .conftest import committer, snapshot


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def umask027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_atomic_write_respects_umask_and_replaces(tmp_path, umask027):
    p = tmp_path / "new" / "f.txt"
    atomic_write(p, "one")
    assert p.read_text() == "one" and _mode(p) == 0o640  # mkstemp alone gives 0o600
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]


def test_atomic_write_refuses_folder_and_unwritable_parent(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write(tmp_path, "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a folder"):
        atomic_write(tmp_path / "file" / "x.txt", "x")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="not writable"):
                atomic_write(ro / "x.txt", "x")
        finally:
            ro.chmod(0o755)
        assert list(ro.iterdir()) == []


def test_atomic_write_cleans_temp_on_failure(tmp_path, monkeypatch):
    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "f.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_fileset_modes_subfolders_and_manifest(tmp_path, umask027):
    dest = tmp_path / "out"
    with FileSet(dest) as fs:
        fs.add("A.txt", "a")
        fs.add("previews/q1.png", b"PNG\x00")
        src = tmp_path / "tmpfile"
        src.write_text("moved")
        src.chmod(0o600)
        fs.add_file("B.txt", src)
    assert snapshot(dest) == {"A.txt": "a", "previews/q1.png": "PNG\x00", "B.txt": "moved",
                              MANIFEST: "A.txt\nB.txt\npreviews/q1.png\n"}
    assert _mode(dest / "A.txt") == 0o640 and _mode(dest / "B.txt") == 0o640
    assert _mode(dest) == 0o750 and _mode(dest / "previews") == 0o750
    assert not src.exists()
    assert [p.name for p in tmp_path.iterdir() if "staging" in p.name] == []


def test_fileset_all_or_nothing_on_failure_between_files(tmp_path):
    dest = tmp_path / "out"
    with FileSet(dest) as fs:
        fs.add("A.txt", "old-a")
        fs.add("B.txt", "old-b")
    before = snapshot(dest)
    with pytest.raises(RuntimeError):
        with FileSet(dest) as fs:
            fs.add("A.txt", "new-a")
            raise RuntimeError("solver died")
    assert snapshot(dest) == before
    assert not any("staging" in p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError):  # first run: nothing appears
        with FileSet(tmp_path / "fresh") as fs:
            fs.add("A.txt", "x")
            raise RuntimeError
    assert not (tmp_path / "fresh").exists()


def test_fileset_keeps_user_files_and_drops_stale_outputs(tmp_path):
    dest = tmp_path / "out"
    with FileSet(dest) as fs:
        fs.add("KNOWS.txt", "k")
        fs.add("LIVED.txt", "l")
        fs.add("previews/old.png", "p")
    (dest / "notes.md").write_text("mine")
    (dest / "mine").mkdir()
    (dest / "mine" / "x").write_text("x")
    (dest / "empty").mkdir()
    with FileSet(dest) as fs:
        fs.add("LIVED.txt", "l2")
    assert snapshot(dest) == {"LIVED.txt": "l2", "notes.md": "mine", "mine/x": "x",
                              MANIFEST: "LIVED.txt\n"}
    assert (dest / "empty").is_dir() and not (dest / "previews").exists()


def test_fileset_checks_before_writing(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(OutputError, match="not a folder"):
        FileSet(f)
    with pytest.raises(OutputError, match="not a folder"):
        FileSet(f / "sub")
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="not writable"):
                FileSet(ro / "out")
        finally:
            ro.chmod(0o755)


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_staging_of_dead_runs_is_removed(tmp_path):
    dest = tmp_path / "out"
    dead = tmp_path / f".out.staging-{_dead_pid()}-abcd1234"
    dead.mkdir()
    (dead / "half.txt").write_text("x")
    alive = tmp_path / f".out.staging-{os.getppid()}-abcd1234"
    alive.mkdir()
    other = tmp_path / f".other.staging-{_dead_pid()}-00"
    other.mkdir()
    FileSet(dest)
    assert not dead.exists() and alive.exists() and other.exists()


def test_fallback_crash_between_renames_then_recovery(tmp_path):
    dest = tmp_path / "out"
    assert committer(dest, "first", 4, 1, "fallback").wait() == 0
    first = snapshot(dest)
    proc = committer(dest, "second", 4, 1, "fallback", "crash-between")
    assert proc.wait() == 9
    # The crash left the previous output aside and the new one staged: dest is absent.
    assert not dest.exists()
    assert any(".out.old-" in p.name for p in tmp_path.iterdir())
    FileSet.recover(dest)
    assert snapshot(dest) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_fallback_without_exchange_publishes(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    dest = tmp_path / "out"
    for v in ("1", "2"):
        with FileSet(dest) as fs:
            fs.add("A.txt", v)
    assert (dest / "A.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def _whole(snap: dict, n: int) -> set:
    """The versions in one snapshot; a whole set has one version in all n files."""
    data = {k: v for k, v in snap.items() if k != MANIFEST}
    assert len(data) == n, sorted(data)
    return set(data.values())


@pytest.mark.parametrize("mode", [(), ("fallback",)])
def test_concurrent_commits_leave_one_whole_set(tmp_path, mode):
    dest = tmp_path / "out"
    procs = [committer(dest, tag, 12, 25, *mode) for tag in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(_whole(snapshot(dest), 12)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


@pytest.mark.parametrize("mode", [(), ("fallback",)])
def test_sigkill_at_random_moments(tmp_path, mode):
    rng = random.Random(13 + len(mode))
    n = 30
    dest = tmp_path / "out"
    outcomes = {"absent": 0, "whole": 0}
    for trial in range(10):
        before = snapshot(dest) if dest.exists() else None
        proc = committer(dest, f"t{trial}", n, 0, *mode)
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not dest.exists():
            # only the fallback has a moment without dest; recovery puts the previous back
            assert mode == ("fallback",) or before is None
            outcomes["absent"] += 1
        else:
            assert len(_whole(snapshot(dest), n)) == 1
            outcomes["whole"] += 1
        FileSet.recover(dest)
        if before is not None:
            assert dest.exists()
        if dest.exists():
            assert len(_whole(snapshot(dest), n)) == 1
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("out", ".out.lock")]
        assert leftovers == []
    assert sum(outcomes.values()) == 10


def test_working_folder_and_its_ancestors_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    for dest in (".", str(work), str(tmp_path)):
        with pytest.raises(OutputError, match="working folder"):
            FileSet(dest)
    FileSet("sub")  # a subfolder is fine


def test_too_many_foreign_files_refused_before_swap(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "MAX_KEPT", 5)
    dest = tmp_path / "out"
    dest.mkdir()
    for i in range(10):
        (dest / f"u{i}").write_text("x")
    with pytest.raises(OutputError, match="more than 5 files"):
        with FileSet(dest) as fs:
            fs.add("A.txt", "a")
    assert sorted(p.name for p in dest.iterdir()) == [f"u{i}" for i in range(10)]
    assert not any("staging" in p.name for p in tmp_path.iterdir())


def test_a_mount_point_inside_the_destination_is_refused_before_swap(tmp_path, monkeypatch):
    # Its files could not be hard-linked into the new folder, and removing the previous folder
    # after the swap would delete them on the other file system.
    dest = tmp_path / "out"
    (dest / "mnt").mkdir(parents=True)
    (dest / "mnt" / "data.bin").write_text("precious")
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: str(p).endswith("/out/mnt") or real(p))
    with pytest.raises(OutputError, match=r"mount point \(mnt\)"):
        with FileSet(dest) as fs:
            fs.add("A.txt", "a")
    assert (dest / "mnt" / "data.bin").read_text() == "precious"
    assert not (dest / "A.txt").exists()
    assert not any("staging" in p.name for p in tmp_path.iterdir())
