"""Checkpoints as bytes, and saving one atomically.

A checkpoint is whatever payload the caller assembles (model and optimizer ``state_dict``s, epoch,
history, settings); :func:`checkpoint_bytes` serialises it, so the runner can publish it together
with the metrics of the same epoch (:func:`vqa_adapters.outputs.publish`), and
:func:`save_checkpoint` writes one file by :func:`hlmrf.infra.atomic_write` (a crash never leaves a
half-written checkpoint). This module does not decide what to save or when.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from hlmrf.errors import DataError
from hlmrf.infra import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_bytes"]


def checkpoint_bytes(payload: dict) -> bytes:
    """``torch.save(payload)`` into memory."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save(payload)`` to ``path`` atomically."""
    atomic_write(path, checkpoint_bytes(payload))


def load_checkpoint(path: str | Path, require: tuple[str, ...] = ()) -> dict:
    """Load a payload written by :func:`save_checkpoint` (on CPU); a file that is not one (or
    lacks a key of ``require``) is a :class:`~hlmrf.errors.DataError` naming it."""
    import pickle

    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    except IsADirectoryError:
        raise DataError("is a folder, not a checkpoint", str(path)) from None
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise DataError(f"not a vqa-train checkpoint ({exc})", str(path)) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, AttributeError,
            ImportError, IndexError, KeyError, TypeError) as exc:
        raise DataError(f"not a vqa-train checkpoint ({type(exc).__name__}: {exc}"[:300] + "); "
                        "remove it or choose another --out", str(path)) from None
    if not isinstance(payload, dict) or not set(require) <= set(payload):
        raise DataError(f"not a vqa-train checkpoint (it lacks {', '.join(require) or 'a dict'})",
                        str(path))
    return payload
