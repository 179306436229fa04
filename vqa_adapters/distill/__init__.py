"""Teacher-student distillation for the VQA networks: losses, schedules, data, training, plots.

Importing this package does not import torch; the torch modules load on first attribute access.
"""
from __future__ import annotations

import importlib

__all__ = [
    "distillation_loss", "soft_loss", "PiSchedule", "LrWarmup", "oracle_mask", "oracle_masks",
    "Settings", "load_settings", "settings_from_dict", "Runner", "train_epoch", "evaluate",
    "save_checkpoint", "load_checkpoint", "plot_accuracy", "synthetic_dataset", "QADataset",
]

_WHERE = {
    "distillation_loss": "losses", "soft_loss": "losses",
    "PiSchedule": "schedules", "LrWarmup": "schedules",
    "oracle_mask": "oracle", "oracle_masks": "oracle",
    "Settings": "settings", "load_settings": "settings", "settings_from_dict": "settings",
    "Runner": "runner", "train_epoch": "trainer", "evaluate": "trainer",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "plot_accuracy": "plot", "synthetic_dataset": "data", "QADataset": "data",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"vqa_adapters.distill.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'vqa_adapters.distill' has no attribute {name!r}")
