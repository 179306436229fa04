"""Atomic checkpoints: a payload written to a temporary file in the target directory, then
``os.replace``-d over the target, so a crash never leaves a half-written checkpoint.

The payload is whatever the caller assembles (model and optimizer ``state_dict``s, epoch, history,
settings); this module does not decide what to save or when.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes"]


def atomic_write_bytes(path: str | Path, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync, then replace ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save(payload)`` to ``path`` atomically."""
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path) -> dict:
    """Load a payload written by :func:`save_checkpoint` (on CPU)."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)
