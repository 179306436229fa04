"""Build a network from a :class:`~vqa_adapters.models.config.ModelConfig` and a role.

Roles: ``baseline`` and ``student`` are the plain network; ``teacher`` wraps it in the
external-mask teacher (``image * mask``), or for ``kind='rn_state'`` in the object-mask teacher
(per-object mask weights appended to the objects), or for ``kind='rn_attention'`` is the
in-network attention RN. Nothing here trains or loads weights.
"""
from __future__ import annotations

from torch import nn

from hlmrf.errors import SettingsError
from vqa_adapters.models.config import ModelConfig
from vqa_adapters.models.rn import AttentionRelationNetwork, RelationNetwork, StateRelationNetwork
from vqa_adapters.models.san import StackedAttentionNetwork
from vqa_adapters.models.teachers import ExternalMaskTeacher, ObjectMaskTeacher

__all__ = ["build_model", "ROLES"]

ROLES = ("baseline", "teacher", "student")
_NETS = {"rn": RelationNetwork, "rn_state": StateRelationNetwork, "san": StackedAttentionNetwork,
         "rn_attention": AttentionRelationNetwork}


def build_model(config: ModelConfig, role: str = "baseline") -> nn.Module:
    """The network for ``role``; the external-mask teacher for ``role='teacher'`` on pixel nets."""
    if role not in ROLES:
        raise SettingsError(f"role must be one of {ROLES}, got {role!r}")
    net = _NETS[config.kind](config)
    if role == "teacher" and config.kind in ("rn", "san"):
        return ExternalMaskTeacher(net)
    if role == "teacher" and config.kind == "rn_state":
        return ObjectMaskTeacher(config)  # per-object mask weights appended to each object
    return net
