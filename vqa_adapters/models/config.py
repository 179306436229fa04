"""Frozen, torch-free settings for the VQA networks (Relation Network, SAN, teachers).

Every size of every network lives here, so a config file can be validated before torch is imported
and a checkpoint can record exactly what it was built from. This module only describes networks;
it builds nothing (see :func:`vqa_adapters.models.factory.build_model`) and knows nothing about
training.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from hlmrf.errors import SettingsError

__all__ = ["QuestionConfig", "ModelConfig", "MODEL_KINDS", "QUESTION_KINDS", "ATTENTION_FORMS",
           "config_from_dict"]

#: ``rn`` pixels Relation Network; ``rn_state`` reads object tensors; ``san`` Stacked Attention
#: Network; ``rn_attention`` the in-network attention teacher (an RN with region attention).
MODEL_KINDS = ("rn", "rn_state", "san", "rn_attention")
#: ``onehot``: a fixed-size vector (Sort-of-CLEVR's 11 dims); ``tokens``: token ids (CLEVR).
QUESTION_KINDS = ("onehot", "tokens")
#: In-network attention: ``eq6`` (the seed paper's eq. 6: ``W_I`` maps the whole flattened feature
#: map to one logit per region) or ``per_region`` (one shared scorer applied to every region).
ATTENTION_FORMS = ("eq6", "per_region")


@dataclass(frozen=True)
class QuestionConfig:
    """How the question becomes a vector."""

    kind: str = "onehot"
    """``onehot`` (linear/MLP embedding of a fixed vector) or ``tokens`` (LSTM over embeddings)."""
    input_dim: int = 11
    """Length of the one-hot question vector (``onehot`` only)."""
    hidden: tuple[int, ...] = ()
    """Hidden ReLU layers before the output embedding (``onehot``); ``()`` is a linear embedding."""
    vocab_size: int = 100
    """Number of token ids, 0 being padding (``tokens`` only)."""
    embed_dim: int = 32
    """Word-embedding size (``tokens`` only)."""
    out_dim: int = 128
    """Size of the question vector (the LSTM hidden size for ``tokens``)."""
    reverse: bool = False
    """Feed the tokens last-to-first (padding stays at the end); ``tokens`` only."""
    glove: str | None = None
    """``tokens``: a GloVe text file (``glove.6B.50d.txt`` format) whose vectors initialise the
    word embeddings (``embed_dim`` must equal its dimension); unset: random embeddings."""

    def __post_init__(self):
        if self.kind not in QUESTION_KINDS:
            raise SettingsError(f"question.kind must be one of {QUESTION_KINDS}, got {self.kind!r}")
        for name in ("input_dim", "vocab_size", "embed_dim", "out_dim"):
            if getattr(self, name) < 1:
                raise SettingsError(f"question.{name} must be >= 1, got {getattr(self, name)}")
        if any(h < 1 for h in self.hidden):
            raise SettingsError(f"question.hidden sizes must be >= 1, got {self.hidden}")
        if self.reverse and self.kind != "tokens":
            raise SettingsError("question.reverse only applies to kind='tokens'")
        if self.glove is not None and self.kind != "tokens":
            raise SettingsError("question.glove only applies to kind='tokens'")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of one network; :meth:`paper` and :meth:`small` are the two RN presets."""

    kind: str = "rn"
    """One of :data:`MODEL_KINDS`."""
    in_channels: int = 3
    """Image channels."""
    conv_channels: tuple[int, ...] = (24, 24, 24, 24)
    """Kernels per 3x3 stride-2 conv layer of the image encoder."""
    batch_norm: bool = True
    """Batch norm after every conv layer."""
    g_units: tuple[int, ...] = (256, 256, 256, 256)
    """RN: layers of the pairwise MLP g (the last size is what is summed over pairs)."""
    f_units: tuple[int, ...] = (256, 256)
    """RN/SAN: layers of the answer MLP f before the answer softmax."""
    dropout: float = 0.0
    """Dropout before the last f layer (0.5 in the CLEVR RN re-implementation)."""
    n_answers: int = 10
    """Size of the answer softmax."""
    object_dim: int = 8
    """``rn_state``: features per object (coordinates and attributes)."""
    attention_dim: int = 64
    """SAN / attention teacher: size k of the attention hidden layer."""
    san_dim: int = 128
    """SAN: size d shared by projected regions and the question vector."""
    san_hops: int = 2
    """SAN: attention hops."""
    attention_supervision: float = 0.0
    """Attention teacher: weight of KL(mask || attention), the only use of the mask (0: none)."""
    attention_form: str = "eq6"
    """``rn_attention``: ``eq6`` (the paper's eq. 6) or ``per_region`` (see ATTENTION_FORMS)."""
    image_size: int = 75
    """Side of the (square) input image; ``eq6`` needs it to size ``W_I``."""
    question: QuestionConfig = field(default_factory=QuestionConfig)
    """The question encoder."""

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise SettingsError(f"model.kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.kind != "rn_state" and not self.conv_channels:
            raise SettingsError("model.conv_channels needs at least one layer")
        for name in ("conv_channels", "g_units", "f_units"):
            sizes = getattr(self, name)
            if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
                raise SettingsError(f"model.{name} sizes must be integers >= 1, got {sizes}")
        if self.kind in ("rn", "rn_state", "rn_attention") and not self.g_units:
            raise SettingsError("model.g_units needs at least one layer for a Relation Network")
        if not 0.0 <= self.dropout < 1.0:
            raise SettingsError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.attention_form not in ATTENTION_FORMS:
            raise SettingsError(f"model.attention_form must be one of {ATTENTION_FORMS}, got "
                                f"{self.attention_form!r}")
        if self.attention_supervision < 0:
            raise SettingsError("model.attention_supervision must be >= 0")
        for name in ("n_answers", "in_channels", "object_dim", "attention_dim", "san_dim",
                     "san_hops", "image_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"model.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def paper(cls, **overrides) -> "ModelConfig":
        """The seed paper's Sort-of-CLEVR RN: convs 32-64-128-256 with batch norm, g 4x2000,
        f 2000-1000-500-100 (large: construct and run it on a GPU)."""
        base = cls(kind="rn", conv_channels=(32, 64, 128, 256), batch_norm=True,
                   g_units=(2000, 2000, 2000, 2000), f_units=(2000, 1000, 500, 100),
                   question=QuestionConfig(kind="onehot", out_dim=128))
        return replace(base, **overrides)

    @classmethod
    def small(cls, **overrides) -> "ModelConfig":
        """A CPU-sized RN: convs 4x16, g 2x64, f 64; trains on Sort-of-CLEVR in minutes."""
        base = cls(kind="rn", conv_channels=(16, 16, 16, 16), batch_norm=True,
                   g_units=(64, 64), f_units=(64,),
                   question=QuestionConfig(kind="onehot", out_dim=32))
        return replace(base, **overrides)


PRESETS = {"paper": ModelConfig.paper, "small": ModelConfig.small, "none": ModelConfig}


def _tuple_fields(cls) -> set[str]:
    return {f.name for f in fields(cls) if str(f.type).startswith("tuple")}


def config_from_dict(data: dict, where: str = "model") -> ModelConfig:
    """Build a :class:`ModelConfig` from plain data (``preset`` picks the base; unknown keys raise).

    ``{"preset": "small", "g_units": [32, 32], "question": {"kind": "tokens"}}`` starts from
    :meth:`ModelConfig.small` and overrides two fields.
    """
    data = dict(data or {})
    preset = data.pop("preset", "none")
    if preset not in PRESETS:
        raise SettingsError(f"{where}.preset must be one of {sorted(PRESETS)}, got {preset!r}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"unknown {where} settings: {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known | {'preset'}))}")
    base = PRESETS[preset]()
    q = data.pop("question", None)
    if q is not None:
        if not isinstance(q, dict):
            raise SettingsError(f"{where}.question must be a mapping")
        qknown = {f.name for f in fields(QuestionConfig)}
        qunknown = sorted(set(q) - qknown)
        if qunknown:
            raise SettingsError(f"unknown {where}.question settings: {', '.join(qunknown)}; "
                                f"known: {', '.join(sorted(qknown))}")
        q = {k: tuple(v) if k in _tuple_fields(QuestionConfig) else v for k, v in q.items()}
        try:
            data["question"] = replace(base.question, **q)
        except TypeError as exc:
            raise SettingsError(f"bad {where}.question settings: {exc}") from exc
    try:
        data = {k: tuple(v) if k in _tuple_fields(ModelConfig) else v for k, v in data.items()}
        return replace(base, **data)
    except TypeError as exc:
        raise SettingsError(f"bad {where} settings: {exc}") from exc
