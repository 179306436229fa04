"""Publish output files all at once or not at all, for every command of hlmrf and vqa_adapters.

:func:`atomic_write` replaces one file (temporary file in the same folder, fsync, rename).
:class:`FileSet` publishes a whole run's folder in one step: the files go into a staging sibling
folder, which then takes the destination's place by one atomic exchange of the two folders (Linux
``renameat2(RENAME_EXCHANGE)``), or by two renames under a lock where that call is missing. A
kill at any moment leaves the destination absent, as it was, or complete; what a killed run left
beside it is removed by the next :class:`FileSet` for that destination. Files in the destination
that an earlier run did not write (a manifest, ``.hlmrf-manifest``, lists what it did) are kept.
Written files get the usual ``0o666 & ~umask`` mode. This module does not decide *what* to write.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from hlmrf.errors import OutputError

__all__ = ["atomic_write", "FileSet", "check_output_dir", "check_output_file", "MANIFEST"]

MANIFEST = ".hlmrf-manifest"
"""Name of the file, inside a published folder, listing the files the run wrote (one a line)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    return 0o666 & ~_umask()


def _fsync_dir(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - e.g. a platform that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path, what: str) -> None:
    """The folder that will hold ``path``: an existing ancestor must be a writable folder."""
    anc = _existing_ancestor(path.parent)
    if not anc.is_dir():
        raise OutputError(f"cannot write {what} here: {anc} is not a folder; choose another "
                          "output path", path)
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what}: the folder {anc} is not writable; choose a "
                          "writable location or fix its permissions", path)


def check_output_file(path: str | os.PathLike) -> Path:
    """Raise :class:`OutputError` unless ``path`` can be (re)written as a file; return it."""
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a folder; name a file to write instead", path)
    if os.path.lexists(path) and not path.exists():
        pass  # a dangling symlink is replaced by the file, as a rename does
    elif path.exists() and not path.is_file():
        raise OutputError("exists and is not a regular file; name a file to write instead", path)
    _check_parent(path, "the file")
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """Raise :class:`OutputError` unless ``path`` can be published as a folder; return the
    absolute folder path (a symlink to a folder is followed, so the link stays)."""
    path = Path(os.path.abspath(path))
    if path.is_symlink() and path.is_dir():
        path = Path(os.path.realpath(path))
    if os.path.lexists(path):
        if not path.is_dir():
            raise OutputError("exists and is not a folder; remove it or choose another output "
                              "folder", path)
        if not os.access(path, os.R_OK | os.X_OK):
            raise OutputError("is not readable, so the files in it cannot be kept; fix its "
                              "permissions or choose another output folder", path)
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except OSError:  # pragma: no cover - the working folder was removed
        cwd = None
    if cwd is not None and (cwd == Path(os.path.realpath(path)) or
                            Path(os.path.realpath(path)) in cwd.parents):
        raise OutputError("is the working folder or holds it, and publishing replaces the whole "
                          "folder; name a subfolder for the output", path)
    if path.name in ("", ".", ".."):
        raise OutputError("cannot publish this folder as a whole (it has no name of its own); "
                          "name a subfolder", path)
    _check_parent(path, "the output folder")
    return path


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write one file atomically: temporary file in the same folder, fsync, mode
    ``0o666 & ~umask``, rename over ``path``, fsync the folder. Missing parent folders are made."""
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_as_bytes(data))
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


# --- the folder exchange ------------------------------------------------------------------------

MAX_KEPT = 100_000
"""Most files of their own a destination may hold (each is hard-linked into the new folder)."""

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = None


def _load_renameat2():
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):  # not glibc >= 2.28, or not Linux
            pass
    return _renameat2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False when the system cannot (then use the locked fallback)."""
    fn = _load_renameat2()
    if not fn:
        return False
    import ctypes

    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


class _Lock:
    """``flock`` on ``dest.parent/.{dest.name}.lock``: serialises commits and cleanup."""

    def __init__(self, dest: Path):
        self.path = dest.parent / f".{dest.name}.lock"
        self.fd = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(dest: Path):
    """``(kind, pid, path)`` for the staging and old folders of runs on ``dest``."""
    prefix = f".{dest.name}."
    try:
        names = os.listdir(dest.parent)
    except OSError:
        return []
    out = []
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        for kind in ("staging", "old"):
            if rest.startswith(kind + "-"):
                pid = rest[len(kind) + 1:].split("-", 1)[0]
                if pid.isdigit():
                    out.append((kind, int(pid), dest.parent / name))
    return out


def _read_manifest(folder: Path) -> set[str]:
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {line for line in text.splitlines() if line}


def _check_relative(rel: str | os.PathLike) -> str:
    p = Path(rel)
    if p.is_absolute() or not p.parts or ".." in p.parts or str(p) in (".", MANIFEST):
        raise ValueError(f"{rel!r} is not a relative file path inside the output folder")
    return p.as_posix()


class FileSet:
    """A run's output files, published together: ``with FileSet(dest) as fs: fs.add(...)``.

    Parameters
    ----------
    dest : the output folder. It is checked here (:class:`~hlmrf.errors.OutputError` before
        anything is written) and what killed runs left beside it is removed.
    """

    def __init__(self, dest: str | os.PathLike):
        self.dest = check_output_dir(dest)
        self.staging: Path | None = None
        self._files: list[str] = []
        self._done = False
        self.recover(self.dest)

    @staticmethod
    def recover(dest: str | os.PathLike) -> None:
        """Remove the staging folders of dead runs on ``dest``; if one died between the two
        renames of the fallback (``dest`` missing), put the previous folder back."""
        dest = Path(os.path.abspath(dest))
        stale = [(k, pid, p) for k, pid, p in _leftovers(dest) if not _pid_alive(pid)]
        if not stale or not dest.parent.is_dir() or not os.access(dest.parent, os.W_OK):
            return
        with _Lock(dest):
            for kind, pid, path in _leftovers(dest):
                if _pid_alive(pid) or not os.path.lexists(path):
                    continue
                if kind == "old" and not os.path.lexists(dest):
                    os.rename(path, dest)
                    _fsync_dir(dest.parent)
                else:
                    shutil.rmtree(path, ignore_errors=True)

    # --- collecting -------------------------------------------------------------------------

    def _stage(self) -> Path:
        if self._done:
            raise RuntimeError("this FileSet was already committed or discarded")
        if self.staging is None:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            path = self.dest.parent / f".{self.dest.name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
            os.mkdir(path)  # 0o777 & ~umask, unlike mkdtemp's 0o700
            self.staging = path
        return self.staging

    def _target(self, rel) -> tuple[str, Path]:
        rel = _check_relative(rel)
        target = self._stage() / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return rel, target

    def _record(self, rel: str) -> None:
        if rel not in self._files:
            self._files.append(rel)

    def add(self, relative_path: str | os.PathLike, data: bytes | str) -> Path:
        """Write one file of the set (``previews/q1.png`` makes the subfolder); return its
        final path."""
        rel, target = self._target(relative_path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_as_bytes(data))
            fh.flush()
            os.fsync(fh.fileno())
        self._record(rel)
        return self.dest / rel

    def add_file(self, relative_path: str | os.PathLike, src_path: str | os.PathLike) -> Path:
        """Move a file already written elsewhere (e.g. a temporary file) into the set."""
        rel, target = self._target(relative_path)
        try:
            os.replace(src_path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copyfile(src_path, target)
            os.unlink(src_path)
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fchmod(fd, _file_mode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._record(rel)
        return self.dest / rel

    # --- publishing -------------------------------------------------------------------------

    def _keep_user_files(self, old: Path, staging: Path) -> None:
        """Link into ``staging`` every file of ``old`` that no run of ours wrote."""
        ours = _read_manifest(old) | set(self._files) | {MANIFEST}
        kept = 0
        for root, dirs, files in os.walk(old):
            kept += len(files) + len(dirs)
            if kept > MAX_KEPT:
                raise OutputError(f"holds more than {MAX_KEPT:,} files that hlmrf did not write, "
                                  "and publishing would copy them all; name an output folder "
                                  "of its own", old)
            rroot = Path(root).relative_to(old)
            for d in dirs:
                rel = (rroot / d).as_posix()
                src = Path(root) / d
                if os.path.ismount(src):
                    # Its files cannot be hard-linked, and removing the previous folder after the
                    # swap would delete them from the other file system.
                    raise OutputError(f"holds a mount point ({rel}); publishing swaps the whole "
                                      "folder, so name an output folder of its own", old)
                if os.path.islink(src):
                    if rel not in ours and not os.path.lexists(staging / rel):
                        os.symlink(os.readlink(src), staging / rel)
                    continue
                (staging / rel).mkdir(exist_ok=True)
                shutil.copymode(src, staging / rel)
            for f in files:
                rel = (rroot / f).as_posix()
                if rel in ours or os.path.lexists(staging / rel):
                    continue
                src = Path(root) / f
                if os.path.islink(src):
                    os.symlink(os.readlink(src), staging / rel)
                    continue
                try:
                    os.link(src, staging / rel)
                except OSError:
                    shutil.copy2(src, staging / rel)
        # Subfolders that held only our stale outputs are not worth keeping.
        keep = _all_dirs(old, ours)
        for root, dirs, files in os.walk(staging, topdown=False):
            if root != str(staging) and not os.listdir(root) and \
                    Path(root).relative_to(staging).as_posix() not in keep:
                os.rmdir(root)

    def _finish_staging(self) -> Path:
        staging = self._stage()
        lines = "".join(f + "\n" for f in sorted(self._files))
        fd = os.open(staging / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(lines.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        for root, dirs, _ in os.walk(staging):
            for d in dirs:
                _fsync_dir(Path(root) / d)
        _fsync_dir(staging)
        return staging

    def commit(self) -> list[Path]:
        """Publish every added file at once; return their final paths (in the order added)."""
        staging = self._finish_staging()
        try:
            with _Lock(self.dest):
                self._swap_in(staging)
        except BaseException:
            self.discard()
            raise
        self._done = True
        self.staging = None
        return [self.dest / f for f in self._files]

    def _swap_in(self, staging: Path) -> None:
        dest = self.dest
        for _ in range(100):
            if not os.path.lexists(dest):
                try:
                    os.rename(staging, dest)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue  # someone published meanwhile (a process not of ours)
                    raise
                _fsync_dir(dest.parent)
                return
            if not dest.is_dir():
                raise OutputError("exists and is not a folder; remove it or choose another "
                                  "output folder", dest)
            self._keep_user_files(dest, staging)
            try:
                shutil.copymode(dest, staging)
            except OSError:  # pragma: no cover
                pass
            _fsync_dir(staging)
            if _exchange(staging, dest):
                _fsync_dir(dest.parent)
                shutil.rmtree(staging, ignore_errors=True)  # now the previous output
                return
            old = dest.parent / f".{dest.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(dest, old)
            self._between_renames()
            os.rename(staging, dest)
            _fsync_dir(dest.parent)
            shutil.rmtree(old, ignore_errors=True)
            return
        raise OutputError("kept changing while this run published its output; try again", dest)

    def _between_renames(self) -> None:
        """Hook for tests: called in the fallback between its two renames."""

    def discard(self) -> None:
        """Drop the staged files; the destination is left as it was."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._done = True

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def __del__(self):  # a set neither committed nor discarded leaves no staging folder behind
        try:
            if not self._done and self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _all_dirs(folder: Path, ours: set[str]) -> set[str]:
    """Relative paths of the folders of ``folder`` that hold something not of ours."""
    keep = set()
    for root, dirs, files in os.walk(folder):
        rroot = Path(root).relative_to(folder)
        for f in files:
            rel = (rroot / f).as_posix()
            if rel not in ours:
                parts = Path(rel).parts[:-1]
                for i in range(1, len(parts) + 1):
                    keep.add(Path(*parts[:i]).as_posix())
        if not dirs and not files and rroot != Path("."):
            keep.add(rroot.as_posix())  # an empty folder the user made
    return keep

