"""The settings of a training run (``vqa-train CONFIG``), as frozen dataclasses read from YAML/JSON.

Sections ``data``, ``model``, ``teacher_model``, ``train`` and ``distill`` map onto
:class:`DataSettings`, :class:`~vqa_adapters.models.config.ModelConfig`, :class:`TrainSettings` and
:class:`DistillSettings`; unknown keys anywhere are an error listing them and the known ones.
This module validates and converts; it trains nothing and imports no torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hlmrf.errors import SettingsError
from hlmrf.infra import settings_from_mapping
from vqa_adapters.distill.schedules import PI_SCHEDULES, LrWarmup, PiSchedule
from vqa_adapters.models.config import ModelConfig, config_from_dict

__all__ = ["DataSettings", "ClevrSettings", "TrainSettings", "DistillSettings", "Settings", "EXPERIMENTS",
           "ROLES", "SOFT_LOSSES", "load_settings", "settings_from_dict", "apply_overrides"]

EXPERIMENTS = ("single", "baseline+teacher+student")
#: ``l2`` choices of the distillation loss (see :mod:`vqa_adapters.distill.losses`).
SOFT_LOSSES = ("cross_entropy", "euclidean")
ROLES = ("baseline", "teacher", "student")


#: Our three splits, in the order a by-scene split assigns scenes.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClevrSettings:
    """``data.clevr``: where CLEVR comes from and how it is split (``data.kind: clevr``).

    Two sources. A *pool*: one question file and one scene file (``questions``, ``scenes``, and
    ``images`` for pixels) shared by the three splits. The *released layout* under ``data.root``:
    ``questions/CLEVR_<s>_questions.json``, ``scenes/CLEVR_<s>_scenes.json``, ``images/<s>/``, with
    ``sources`` naming the released split ``<s>`` each of ours reads. Whenever several of our splits
    read the same source, that source's scenes are divided among them by ``fractions`` (by scene,
    never by question: a test scene is never seen in training).
    """

    input: str = "state"
    """``state`` (per-object vectors from the scene graph; ``model.kind: rn_state``) or ``image``
    (pixels; ``model.kind: san`` or ``rn``)."""
    questions: str | None = None
    """Pool: the question file (released or generator format, with answers)."""
    scenes: str | None = None
    """Pool: the scene file."""
    images: str | None = None
    """Pool, ``input: image``: the folder holding the scenes' ``image_filename``s."""
    sources: dict = field(default_factory=lambda: {"train": "train", "val": "val",
                                                   "test": "val"})
    """Released layout: our split -> the released split it reads (the released test split has
    no answers, so val and test share the released val split, divided by scene)."""
    fractions: dict = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    """Shares of a shared source's scenes, renormalised over the splits that share it."""
    split_seed: int = 0
    """Seeds the scene order of the by-scene split."""
    by_scene: bool = True
    """``false``: splits that share a source all get all of it (smoke tests only)."""
    exclude_scenes: list = field(default_factory=list)
    """Inclusive ``[first, last]`` image_index ranges whose questions are dropped."""
    masks_file: str | None = None
    """``data.masks: file``: a ``vqa-masks`` ``masks.npz`` (``{split}`` is replaced by the
    released split name)."""
    psl_parser: str = "text"
    """``data.masks: psl``: read the question text (``text``) or its gold program (``program``)."""
    psl_rules: str = "default"
    """``data.masks: psl``: ``default``, ``paper`` or a ``.psl`` file."""
    image_size: list = field(default_factory=lambda: [96, 64])
    """``input: image``: (width, height) images and masks are resized to."""

    def __post_init__(self):
        if self.input not in ("state", "image"):
            raise SettingsError(f"data.clevr.input must be state or image, got {self.input!r}")
        for name, d in (("sources", self.sources), ("fractions", self.fractions)):
            if not isinstance(d, dict) or set(d) != set(SPLITS):
                raise SettingsError(f"data.clevr.{name} must map each of train, val, test, got "
                                    f"{d!r}")
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0
               for v in self.fractions.values()) or sum(self.fractions.values()) <= 0:
            raise SettingsError(f"data.clevr.fractions must be numbers >= 0 with a positive "
                                f"sum, got {self.fractions!r}")
        for r in self.exclude_scenes:
            if (not isinstance(r, (list, tuple)) or len(r) != 2
                    or not all(isinstance(v, int) for v in r) or r[0] > r[1]):
                raise SettingsError(f"data.clevr.exclude_scenes holds [first, last] index "
                                    f"ranges, got {r!r}")
        if self.psl_parser not in ("text", "program"):
            raise SettingsError(f"data.clevr.psl_parser must be text or program, got "
                                f"{self.psl_parser!r}")
        size = self.image_size
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and v >= 8 for v in size)):
            raise SettingsError(f"data.clevr.image_size must be [width, height] of at least 8 "
                                f"pixels, got {size!r}")

    def excluded(self, image_index: int) -> bool:
        return any(lo <= image_index <= hi for lo, hi in self.exclude_scenes)


@dataclass(frozen=True)
class DataSettings:
    """Where the questions come from."""

    kind: str = "sort_of_clevr"
    """``sort_of_clevr``, ``synthetic`` (tiny separable task) or ``clevr`` (extension point)."""
    root: str | None = None
    """Sort-of-CLEVR directory with ``<split>.npz``; unset: generate the splits in memory."""
    generator: dict = field(default_factory=dict)
    """``SortOfClevrSettings`` fields for in-memory generation (seed, train, val, test, ...)."""
    masks: str = "oracle"
    """``oracle`` (oracle-referred-object masks), ``file`` (``DIR/masks/``; CLEVR:
    ``clevr.masks_file``), ``psl`` (CLEVR: PSL's chosen objects, computed when loading) or
    ``none``."""
    mask_sigma: float | None = None
    """Oracle blob sigma in pixels (default: the generator's object size)."""
    eval_split: str = "val"
    """Split evaluated after every epoch (the curves); the final numbers use ``test``."""
    question: str = "onehot"
    """``onehot`` (the 11-dim question vector) or ``text`` (the natural-language question,
    tokenised with a vocabulary built from the training split; needs ``question.kind: tokens``)."""
    vocab_min_count: int = 1
    """``question: text``: words seen fewer times in the training split become ``<unk>``."""
    clevr: dict = field(default_factory=dict)
    """``data.kind: clevr``: :class:`ClevrSettings` fields (source files, input kind, split)."""
    seed: int = 0
    """Seed of the synthetic task."""
    synthetic_train: int = 256
    """Synthetic: training images."""
    synthetic_eval: int = 64
    """Synthetic: validation and test images."""
    synthetic_questions: int = 3
    """Synthetic: questions per image."""
    synthetic_size: int = 16
    """Synthetic: image side."""

    def __post_init__(self):
        if self.kind not in ("sort_of_clevr", "synthetic", "clevr"):
            raise SettingsError(f"data.kind must be sort_of_clevr, synthetic or clevr, got "
                                f"{self.kind!r}")
        if self.masks not in ("oracle", "file", "psl", "none"):
            raise SettingsError(f"data.masks must be oracle, file, psl or none, got "
                                f"{self.masks!r}")
        if self.masks == "psl" and self.kind != "clevr":
            raise SettingsError("data.masks: psl is computed when loading CLEVR only; for "
                                "Sort-of-CLEVR write masks with vqa-masks and use data.masks: file")
        if not isinstance(self.clevr, dict):
            raise SettingsError("data.clevr must be a mapping of ClevrSettings fields")
        if self.clevr and self.kind != "clevr":
            raise SettingsError("data.clevr only applies to data.kind: clevr")
        if self.kind == "clevr":
            self.clevr_settings()
        if self.question not in ("onehot", "text"):
            raise SettingsError(f"data.question must be onehot or text, got {self.question!r}")
        if self.vocab_min_count < 1:
            raise SettingsError("data.vocab_min_count must be >= 1")
        if self.eval_split not in ("val", "test"):
            raise SettingsError(f"data.eval_split must be val or test, got {self.eval_split!r}")
        if self.mask_sigma is not None and self.mask_sigma <= 0:
            raise SettingsError("data.mask_sigma must be > 0")
        if not isinstance(self.generator, dict):
            raise SettingsError("data.generator must be a mapping of SortOfClevrSettings fields")
        for name in ("synthetic_train", "synthetic_eval", "synthetic_questions", "synthetic_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"data.{name} must be >= 1")
        if self.synthetic_size < 8:
            raise SettingsError("data.synthetic_size must be >= 8")

    def clevr_settings(self) -> ClevrSettings:
        """``data.clevr`` validated (unknown keys are an error that lists the known ones)."""
        return settings_from_mapping(ClevrSettings, self.clevr, what="data.clevr setting")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of every stage."""

    epochs: int = 10
    """Epochs per stage (the student's, and the iterative rounds)."""
    teacher_epochs: int | None = None
    """Epochs of the teacher stage (default: ``epochs``)."""
    batch_size: int = 64
    """Mini-batch size (the paper: 64)."""
    eval_batch_size: int = 256
    """Batch size for evaluation."""
    lr: float = 1e-4
    """Adam learning rate (the paper: 1e-4), used when there is no warm-up."""
    warmup: dict | None = None
    """``{start, max, every}``: start lr doubled every ``every`` epochs up to ``max``."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    select: str = "best_val"
    """``best_val``: test (and hand to the student) the weights of the epoch with the best
    ``data.eval_split`` accuracy; ``last``: the last epoch's weights."""

    def __post_init__(self):
        if self.epochs < 1 or (self.teacher_epochs is not None and self.teacher_epochs < 1):
            raise SettingsError("train.epochs and train.teacher_epochs must be >= 1")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise SettingsError("train.batch_size and train.eval_batch_size must be >= 1")
        if self.select not in ("best_val", "last"):
            raise SettingsError(f"train.select must be best_val or last, got {self.select!r}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise SettingsError("train.lr must be > 0 and train.weight_decay >= 0")
        if self.warmup is not None:
            self.lr_warmup()

    def lr_warmup(self) -> LrWarmup | None:
        if self.warmup is None:
            return None
        unknown = sorted(set(self.warmup) - {"start", "max", "every"})
        if unknown:
            raise SettingsError(f"unknown train.warmup settings: {', '.join(unknown)}; known: "
                                "every, max, start")
        return LrWarmup(**self.warmup)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch``."""
        w = self.lr_warmup()
        return w(epoch) if w is not None else self.lr


@dataclass(frozen=True)
class DistillSettings:
    """How the student learns from the teacher."""

    mode: str = "sequential"
    """``sequential`` (teacher trained, frozen, then student) or ``iterative`` (alternating
    epochs from the trained teacher; the teacher also imitates the student)."""
    pi: float = 0.575
    """Imitation weight (paper: 0.575 sequential, 0.9 iterative)."""
    schedule: str = "fixed"
    """``fixed`` or ``min`` (``min(pi, 1 - pi**t)``, t the 1-based epoch)."""
    soft_loss: str = "cross_entropy"
    """``cross_entropy`` on soft targets, or ``euclidean`` (squared distance of probabilities)."""
    temperature: float = 1.0
    """Softmax temperature of the soft targets."""
    teacher_checkpoint: str | None = None
    """``experiment: single`` with ``role: student``: the teacher's checkpoint file."""
    attention_supervision: float = 0.0
    """Student only: weight of ``KL(mask || the student's own attention)``, a "where to look"
    term beside eq. 5 (needs a student with attention: ``rn_attention`` or ``san``). The
    student's input stays unmasked; the mask is used in training only."""

    def __post_init__(self):
        if self.mode not in ("sequential", "iterative"):
            raise SettingsError(f"distill.mode must be sequential or iterative, got {self.mode!r}")
        if self.schedule not in PI_SCHEDULES:
            raise SettingsError(f"distill.schedule must be one of {PI_SCHEDULES}")
        if self.soft_loss not in SOFT_LOSSES:
            raise SettingsError(f"distill.soft_loss must be one of {SOFT_LOSSES}")
        if self.temperature <= 0:
            raise SettingsError("distill.temperature must be > 0")
        if self.attention_supervision < 0:
            raise SettingsError("distill.attention_supervision must be >= 0")
        self.pi_schedule()

    def pi_schedule(self) -> PiSchedule:
        return PiSchedule(pi=self.pi, kind=self.schedule)


@dataclass(frozen=True)
class Settings:
    """One ``vqa-train`` run."""

    experiment: str = "single"
    """``single`` (one role) or ``baseline+teacher+student`` (three stages and a summary)."""
    label: str | None = None
    """A name for this setting in reports (``vqa-report`` groups seeds by it)."""
    role: str = "baseline"
    """``single`` only: which network to train."""
    seed: int = 0
    """Seeds weights, shuffling and dropout (per stage and epoch, so resumes are exact)."""
    num_threads: int = 1
    """``torch.set_num_threads``."""
    device: str = "cpu"
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (a GPU when torch sees one)."""
    deterministic: bool = True
    """``torch.use_deterministic_algorithms(True)``."""
    data: DataSettings = field(default_factory=DataSettings)
    """The data."""
    model: ModelConfig = field(default_factory=ModelConfig.small)
    """Baseline and student network."""
    teacher_model: ModelConfig | None = None
    """Teacher network (default: ``model``)."""
    train: TrainSettings = field(default_factory=TrainSettings)
    """Optimisation."""
    distill: DistillSettings = field(default_factory=DistillSettings)
    """Distillation."""

    def __post_init__(self):
        if self.experiment not in EXPERIMENTS:
            raise SettingsError(f"experiment must be one of {EXPERIMENTS}, got {self.experiment!r}")
        if self.role not in ROLES:
            raise SettingsError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.num_threads < 1:
            raise SettingsError("num_threads must be >= 1")
        import re

        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", str(self.device)):
            raise SettingsError(f"device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        if (self.experiment == "single" and self.role == "student"
                and self.distill.teacher_checkpoint is None):
            raise SettingsError("role: student needs distill.teacher_checkpoint (or use "
                                "experiment: baseline+teacher+student)")
        if self.needs_masks and self.data.masks == "none":
            raise SettingsError("a teacher needs masks: set data.masks to oracle or file"
                                + (" (or psl)" if self.data.kind == "clevr" else ""))
        if self.data.kind == "clevr" and self.data.question != "text":
            raise SettingsError("data.kind: clevr reads the question text: set data.question: "
                                "text (and model.question.kind: tokens)")
        for where, cfg in (("model", self.model), ("teacher_model", self.teacher_model)):
            if cfg is None:
                continue
            if self.data.question == "text" and cfg.question.kind != "tokens":
                raise SettingsError(f"data.question: text needs {where}.question.kind: tokens "
                                    "(an LSTM over word ids)")
            if self.data.question == "onehot" and cfg.question.kind == "tokens":
                raise SettingsError(f"{where}.question.kind: tokens reads words: set "
                                    "data.question: text")
            if self.data.kind == "clevr":
                state = self.data.clevr_settings().input == "state"
                if state != (cfg.kind == "rn_state"):
                    raise SettingsError(
                        f"data.clevr.input: {'state' if state else 'image'} needs {where}.kind "
                        f"{'rn_state' if state else 'san or rn'}, not {cfg.kind!r}")
        if self.distill.attention_supervision > 0 and self.model.kind not in ("rn_attention",
                                                                              "san"):
            raise SettingsError("distill.attention_supervision needs a student with attention: "
                                f"model.kind rn_attention or san, not {self.model.kind!r}")

    @property
    def needs_masks(self) -> bool:
        return self.experiment != "single" or self.role != "baseline"

    @property
    def teacher(self) -> ModelConfig:
        return self.teacher_model or self.model

    def to_dict(self) -> dict:
        return asdict(self)


def _section(cls, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    return settings_from_mapping(cls, data, what=f"{where} setting")


def settings_from_dict(data: dict) -> Settings:
    """Validate plain data (a parsed config file) into :class:`Settings`."""
    if not isinstance(data, dict):
        raise SettingsError("a config file must hold a mapping at the top level")
    top = {f.name for f in fields(Settings)}
    unknown = sorted(str(k) for k in data if k not in top)
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(top))}")
    data = dict(data)
    model = data.pop("model", None)
    if model is not None and not isinstance(model, dict):
        raise SettingsError(f"model must be a mapping, got {type(model).__name__}")
    model = config_from_dict(model or {"preset": "small"}, "model")
    tm = data.pop("teacher_model", None)
    if tm is not None and not isinstance(tm, dict):
        raise SettingsError(f"teacher_model must be a mapping, got {type(tm).__name__}")
    teacher = config_from_dict(tm, "teacher_model") if tm is not None else None
    sections = {"data": DataSettings, "train": TrainSettings, "distill": DistillSettings}
    built = {k: _section(cls, data.pop(k, None), k) for k, cls in sections.items()}
    return settings_from_mapping(Settings, {**data, "model": model, "teacher_model": teacher, **built},
                                 what="setting")


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """``["seed=1", "distill.pi=0.3", "model.question.reverse=true"]`` applied to plain config
    data: dotted keys, values read as YAML scalars (numbers, booleans, null, strings, lists)."""
    import yaml

    data = dict(data or {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise SettingsError(f"--set {item!r}: write KEY=VALUE, e.g. --set distill.pi=0.3")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise SettingsError(f"--set {item!r}: the value is not a YAML scalar") from None
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise SettingsError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is not a section")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return data


def load_settings(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Settings:
    """Read a ``.yaml``/``.yml`` or ``.json`` config file into :class:`Settings`, then apply
    ``--set KEY=VALUE`` overrides (:func:`apply_overrides`)."""
    path = Path(path)
    if not path.exists():
        raise SettingsError(f"{path}: file not found")
    if not path.is_file():
        raise SettingsError(f"{path}: is {'a folder' if path.is_dir() else 'not a regular file'}; "
                            "give a .yaml or .json config file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else f"{path}"
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SettingsError(f"{where}: not valid YAML: {what}") from None
        except RecursionError:
            raise SettingsError(f"{path}: not valid YAML: nested too deeply") from None
    elif path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") \
                from None
        except RecursionError:
            raise SettingsError(f"{path}: not valid JSON: nested too deeply") from None
    else:
        raise SettingsError(f"{path}: config files must end in .yaml, .yml or .json")
    if data is not None and not isinstance(data, dict):
        raise SettingsError(f"{path}: a config file must hold a mapping at the top level")
    data = apply_overrides(data or {}, overrides)
    try:
        return settings_from_dict(data)
    except SettingsError as exc:
        where = f"{path} with --set {' '.join(overrides)}" if overrides else f"{path}"
        raise SettingsError(f"{where}: {exc}") from exc
