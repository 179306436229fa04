"""CLEVR for ``vqa-train``: state descriptions or images, questions, answers, families and masks.

``load_clevr(data, split)`` (``LOADERS["clevr"]``) returns a dataset of dicts in the contract of
:mod:`vqa_adapters.distill.data`, over one of two inputs (``data.clevr.input``):

- ``state``: ``objects`` float32 (N_max, 19) per question's scene, one row per object, padded with
  zero rows to the largest scene of the source: 3-d coordinates (``3d_coords``; x and y divided by
  3 so they lie in about [-1, 1], z as is), one-hots of color (8), size (2), material (2) and shape
  (3), each in sorted value order, and a validity flag (1 for a real object, 0 for padding). The
  mask is ``mask`` float32 (N_max,): 1 for each object PSL (or the oracle) chose, 0 otherwise;
  the teacher appends it to each object's vector (:class:`~vqa_adapters.models.teachers.ObjectMaskTeacher`).
- ``image``: ``image`` float32 (3, H, W) and ``mask`` float32 (1, H, W) from
  :class:`~vqa_adapters.clevr.torch_data.ClevrMaskDataset` (the chosen objects' blobs rendered by
  :func:`vqa_adapters.psl.masks.render_masks`, or a ``vqa-masks`` file); the external-mask
  teacher reads ``image * mask``.

Every item also has ``question`` int64 token ids (``vqa_adapters.text.Vocabulary`` of the training
split's texts; the runner re-encodes the same texts with the same vocabulary), ``answer`` int64
(index in the training split's sorted answers; an answer the training split never has gets the index
``len(answers)``, which no network outputs, so it counts as wrong), ``qtype`` (:data:`QUESTION_TYPES`,
from the program's last function) and ``image_index``/``question_index``.

Masks (``data.masks``): ``psl`` runs the PSL pipeline (:func:`vqa_adapters.psl.pipeline.clevr_pipeline`,
question text by default) when loading; ``oracle`` uses the program's referred objects (the union of
every ``unique`` output and every ``count``/``exist`` input, from the file's stored ``_output``s when
present, else by executing the program); ``file`` reads a ``vqa-masks`` ``masks.npz``. None of them
looks at the answer. Splits are by scene (:func:`scene_splits`). This module reads files and builds
datasets; it does not train.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hlmrf.errors import DataError, SettingsError
from vqa_adapters.clevr.errors import ClevrDataError, ProgramExecutionError
from vqa_adapters.clevr.executor import execute_program, referred_objects
from vqa_adapters.clevr.io import (Question, Scene, load_scenes, program_from_list,
                                   question_from_dict, read_json_document)
from vqa_adapters.clevr.torch_data import Vocabulary as AnswerVocabulary
from vqa_adapters.clevr.vocabulary import ATTRIBUTE_VALUES
from vqa_adapters.distill.settings import SPLITS, ClevrSettings

__all__ = ["QUESTION_TYPES", "question_type", "object_features", "OBJECT_DIM", "scene_splits",
           "ClevrQuestion", "read_questions", "ClevrStateDataset", "ClevrImageDataset",
           "load_clevr"]

#: The usual per-type columns of CLEVR result tables (Johnson et al. 2017 and later module-network
#: papers; eight, nine numbers with overall): the program's last function decides.
QUESTION_TYPES = ("exist", "count", "compare_integer", "query_size", "query_color",
                  "query_material", "query_shape", "compare_attribute")
_TYPE_OF_FUNCTION = {
    "exist": 0, "count": 1, "equal_integer": 2, "less_than": 2, "greater_than": 2,
    "query_size": 3, "query_color": 4, "query_material": 5, "query_shape": 6,
    "equal_size": 7, "equal_color": 7, "equal_material": 7, "equal_shape": 7,
}
_ATTR_ORDER = ("color", "size", "material", "shape")
_ONEHOTS = tuple((a, tuple(sorted(ATTRIBUTE_VALUES[a]))) for a in _ATTR_ORDER)
#: Features per object: 3 coordinates, 15 attribute one-hots, the validity flag.
OBJECT_DIM = 3 + sum(len(v) for _, v in _ONEHOTS) + 1


def question_type(last_function: str) -> int:
    """Index in :data:`QUESTION_TYPES` of a program whose last node is ``last_function``."""
    try:
        return _TYPE_OF_FUNCTION[last_function]
    except KeyError:
        raise DataError(f"a CLEVR program ends in {last_function!r}, which answers no question "
                        f"type; expected one of {', '.join(sorted(_TYPE_OF_FUNCTION))}") from None


def object_features(scene: Scene, n_max: int) -> np.ndarray:
    """The (n_max, :data:`OBJECT_DIM`) state description of ``scene`` (zero rows pad it)."""
    if len(scene.objects) > n_max:
        raise DataError(f"scene {scene.image_index} has {len(scene.objects)} objects, more than "
                        f"{n_max}")
    out = np.zeros((n_max, OBJECT_DIM), np.float32)
    for i, o in enumerate(scene.objects):
        x, y, z = o.coords_3d
        row = [x / 3.0, y / 3.0, z]
        for attr, values in _ONEHOTS:
            row += [float(getattr(o, attr) == v) for v in values]
        out[i] = row + [1.0]
    return out


def scene_splits(image_indices, names: tuple[str, ...], fractions: dict, seed: int
                 ) -> dict[str, frozenset[int]]:
    """Divide scenes among the splits ``names`` by ``fractions`` (renormalised over ``names``).

    The sorted scene indices are permuted by ``numpy.random.default_rng(seed)`` and cut in the
    order train, val, test with ``round`` of the cumulative shares, so the split depends only on
    the set of scenes, the fractions and the seed; every named split with a positive share gets
    at least one scene when there are enough.
    """
    scenes = np.array(sorted(set(int(i) for i in image_indices)), np.int64)
    order = scenes[np.random.default_rng(seed).permutation(len(scenes))]
    names = tuple(n for n in SPLITS if n in names)
    total = sum(float(fractions[n]) for n in names)
    if total <= 0:
        raise SettingsError(f"data.clevr.fractions gives {', '.join(names)} no share of the scenes")
    out, start, acc = {}, 0, 0.0
    for k, n in enumerate(names):
        acc += float(fractions[n]) / total
        end = len(order) if k == len(names) - 1 else int(round(acc * len(order)))
        if fractions[n] > 0 and end <= start < len(order):
            end = start + 1
        out[n] = frozenset(order[start:end].tolist())
        start = end
    return out


@dataclass(frozen=True)
class ClevrQuestion:
    """What training needs of one question; ``referred`` is the oracle's objects."""

    question: Question
    qtype: int
    referred: tuple[int, ...]


def _referred_from_outputs(nodes: list, path: str, where: str) -> tuple[int, ...]:
    out: set[int] = set()
    for n in nodes:
        fn = n.get("function", n.get("type"))
        if fn == "unique":
            out.add(int(n["_output"]))
        elif fn in ("count", "exist"):
            src = nodes[n["inputs"][0]]["_output"]
            if not isinstance(src, list):
                raise ClevrDataError(f"{where}: the input of {fn} stores {src!r}, not a set of "
                                     "objects", path=path)
            out.update(int(i) for i in src)
    return tuple(sorted(out))


def read_questions(path: str | Path, scenes: dict[int, Scene]) -> list[ClevrQuestion]:
    """Questions with answers and programs from a released or generator file.

    Programs are used for the question type (their last function) and the oracle's referred
    objects only. A generator file's stored node outputs give the referred objects directly, so
    programs whose literal arguments the file lacks (as the generated 300-scene file's) still
    serve; other files' programs are executed.
    """
    p = str(path)
    data = read_json_document(p, "question file")
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise ClevrDataError("expected a JSON object with a list under 'questions'", path=p)
    out = []
    for k, d in enumerate(data["questions"]):
        where = f"questions[{k}]"
        if not isinstance(d, dict):
            raise ClevrDataError(f"{where}: expected an object", path=p)
        q = question_from_dict({**d, "program": None}, path=p, where=where)
        nodes = d.get("program")
        if q.answer is None or not nodes:
            raise ClevrDataError(f"{where}: no answer or program (the released test split has "
                                 "neither); training needs both", path=p)
        if q.image_index not in scenes:
            raise ClevrDataError(f"{where}: image_index {q.image_index} has no scene", path=p)
        last = nodes[-1].get("function", nodes[-1].get("type")) if isinstance(nodes[-1], dict) \
            else None
        if all(isinstance(n, dict) and "_output" in n for n in nodes):
            referred = _referred_from_outputs(nodes, p, where)
        else:
            program = program_from_list(nodes, where=f"{where}.program", path=p)
            try:
                ex = execute_program(program, scenes[q.image_index], q.question_index)
            except ProgramExecutionError as exc:
                raise ClevrDataError(f"{where}: {exc}", path=p) from None
            referred = tuple(sorted(referred_objects(program, ex.outputs)))
        out.append(ClevrQuestion(q, question_type(str(last)), referred))
    return out


def _masks_from_file(path: str, questions: list[ClevrQuestion]):
    """Each question's chosen objects, its blobs' weights and its row in a ``vqa-masks``
    ``masks.npz`` (either layout), and the file as read (:class:`vqa_adapters.psl.io.StoredMasks`)."""
    from vqa_adapters.psl.io import read_masks_npz

    stored = read_masks_npz(path, load_masks=False)
    pos = {int(q): i for i, q in enumerate(stored.question_index)}
    chosen, weights, rows = [], [], []
    for cq in questions:
        i = pos.get(cq.question.question_index)
        if i is None:
            raise DataError(f"no mask for question {cq.question.question_index}", path)
        objs, w = stored.objects(i)
        chosen.append(tuple(int(v) for v in objs))
        weights.append(w)
        rows.append(i)
    return chosen, weights, rows, stored


class _ClevrBase:
    """Shared by both inputs: tokens, answers, types, the per-question chosen objects."""

    type_names = QUESTION_TYPES
    #: CLEVR has no relational / non-relational split of its types: both report n/a.
    relational_from = None

    def _init_questions(self, questions, question_vocab, answer_vocab):
        self.items = list(questions)
        self.question_vocabulary = question_vocab
        self.answer_vocabulary = answer_vocab
        qs = [c.question for c in self.items]
        self.texts = [[q.text] for q in qs]
        """One question per row (``texts[k][0]``), the layout the runner's text path reads."""
        self.tokens = torch.from_numpy(np.ascontiguousarray(
            question_vocab.encode_batch([q.text for q in qs]), dtype=np.int64))
        unseen = len(answer_vocab)
        self.answers = torch.tensor([a if (a := answer_vocab.lookup(q.answer)) >= 0 else unseen
                                     for q in qs], dtype=torch.int64)
        self.qtypes = torch.tensor([c.qtype for c in self.items], dtype=torch.int64)
        self.image_indices = torch.tensor([q.image_index for q in qs], dtype=torch.int64)
        self.question_indices = torch.tensor([q.question_index for q in qs], dtype=torch.int64)

    @property
    def model_sizes(self) -> dict:
        """Network sizes the data fixes (the runner applies them): the answer softmax."""
        return {"n_answers": len(self.answer_vocabulary)}

    def __len__(self) -> int:
        return len(self.items)

    def _common(self, idx: torch.Tensor) -> dict:
        return {"question": self.tokens[idx], "answer": self.answers[idx],
                "qtype": self.qtypes[idx], "image_index": self.image_indices[idx],
                "question_index": self.question_indices[idx]}

    def __getitem__(self, k: int) -> dict:
        if not -len(self) <= k < len(self):
            raise IndexError(f"question {k} out of range for {len(self)} questions")
        batch = self.get_batch(np.array([k % len(self)]))
        item = {key: v[0] for key, v in batch.items()}
        item["qtype"] = int(item["qtype"])
        return item


class ClevrStateDataset(_ClevrBase):
    """State-description items (see the module docstring); ``chosen=None``: no masks."""

    def __init__(self, questions: list[ClevrQuestion], scenes: dict[int, Scene], n_max: int,
                 question_vocab, answer_vocab, chosen: list[tuple[int, ...]] | None = None):
        self._init_questions(questions, question_vocab, answer_vocab)
        order = sorted({c.question.image_index for c in self.items})
        row = {s: i for i, s in enumerate(order)}
        self.objects = torch.from_numpy(np.stack([object_features(scenes[s], n_max)
                                                  for s in order])
                                        if order else np.zeros((0, n_max, OBJECT_DIM), np.float32))
        self.scene_row = torch.tensor([row[c.question.image_index] for c in self.items],
                                      dtype=torch.int64)
        self.weights = None
        if chosen is not None:
            w = np.zeros((len(self.items), n_max), np.float32)
            for k, objs in enumerate(chosen):
                n = len(scenes[self.items[k].question.image_index].objects)
                bad = [i for i in objs if not 0 <= i < n]
                if bad:
                    raise DataError(f"question {self.items[k].question.question_index}: chosen "
                                    f"object {bad[0]} is not one of its scene's {n} objects")
                w[k, list(objs)] = 1.0
            self.weights = torch.from_numpy(w)

    @property
    def has_masks(self) -> bool:
        return self.weights is not None

    @property
    def model_sizes(self) -> dict:
        return {**super().model_sizes, "object_dim": OBJECT_DIM}

    def get_batch(self, indices) -> dict:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        batch = {"objects": self.objects[self.scene_row[idx]], **self._common(idx)}
        if self.weights is not None:
            batch["mask"] = self.weights[idx]
        return batch


class ClevrImageDataset(_ClevrBase):
    """Image items over :class:`~vqa_adapters.clevr.torch_data.ClevrMaskDataset` (which reads and
    resizes the images and holds the masks); ``has_masks`` False drops ``mask`` from items."""

    def __init__(self, questions: list[ClevrQuestion], scenes: dict[int, Scene], images,
                 masks: np.ndarray, question_vocab, answer_vocab, *, has_masks: bool = True):
        from vqa_adapters.clevr.torch_data import ClevrMaskDataset

        self._init_questions(questions, question_vocab, answer_vocab)
        self.base = ClevrMaskDataset([c.question for c in self.items], scenes, images, masks,
                                     question_vocab, answer_vocab)
        self._has_masks = has_masks

    @property
    def has_masks(self) -> bool:
        return self._has_masks

    def get_batch(self, indices) -> dict:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        items = [self.base[int(k)] for k in idx]
        batch = {"image": torch.stack([it["image"] for it in items]), **self._common(idx)}
        if self._has_masks:
            batch["mask"] = torch.stack([it["mask"] for it in items])
        return batch


# ---- loading ------------------------------------------------------------------------------------

@dataclass
class _Source:
    name: str | None          # released split name, or None for a pool
    questions: Path
    scenes: Path
    images: Path | None
    masks_file: str | None


def _sources(data, cs: ClevrSettings) -> dict[str, _Source]:
    """Our split -> its source files."""
    if data.root is None:
        if cs.questions is None or cs.scenes is None:
            raise SettingsError("data.kind: clevr needs data.root (the released layout) or "
                                "data.clevr.questions and data.clevr.scenes (one pool)")
        src = _Source(None, Path(cs.questions), Path(cs.scenes),
                      Path(cs.images) if cs.images else None, cs.masks_file)
        return {s: src for s in SPLITS}
    root = Path(data.root)
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder (expected the released CLEVR layout "
                        "with images/, scenes/, questions/)")
    out = {}
    for split in SPLITS:
        r = str(cs.sources[split])
        out[split] = _Source(r, root / "questions" / f"CLEVR_{r}_questions.json",
                             root / "scenes" / f"CLEVR_{r}_scenes.json", root / "images" / r,
                             cs.masks_file.replace("{split}", r) if cs.masks_file else None)
    return out


class _Corpus:
    """Every split of one ``data`` setting, built once: reading, splitting, vocabularies, masks."""

    def __init__(self, data):
        from vqa_adapters.text import Vocabulary

        cs = data.clevr_settings()
        self.settings = cs
        sources = _sources(data, cs)
        if cs.input == "image":
            for s in sources.values():
                if s.images is None:
                    raise SettingsError("data.clevr.input: image needs data.clevr.images (the "
                                        "folder of the scenes' PNG files)")
                if not s.images.is_dir():
                    raise DataError(f"image folder {s.images} does not exist")
        loaded: dict[Path, tuple] = {}
        self.questions: dict[str, list[ClevrQuestion]] = {}
        self.scenes: dict[str, dict[int, Scene]] = {}
        self.excluded = 0
        by_source: dict[tuple, list[str]] = {}
        for split, src in sources.items():
            by_source.setdefault((src.questions, src.scenes), []).append(split)
        for key, names in by_source.items():
            qpath, spath = key
            if key not in loaded:
                scenes = load_scenes(spath)
                qs = read_questions(qpath, scenes)
                kept = [c for c in qs if not cs.excluded(c.question.image_index)]
                self.excluded += len(qs) - len(kept)
                loaded[key] = (scenes, kept)
            scenes, kept = loaded[key]
            if cs.by_scene and len(names) > 1:
                parts = scene_splits((c.question.image_index for c in kept), tuple(names),
                                     cs.fractions, cs.split_seed)
            else:
                everything = frozenset(c.question.image_index for c in kept)
                parts = {n: everything for n in names}
            for n in names:
                self.questions[n] = [c for c in kept if c.question.image_index in parts[n]]
                self.scenes[n] = scenes
        if not self.questions["train"]:
            raise DataError(f"the training split of {sources['train'].questions} has no "
                            "questions (check data.clevr.fractions and exclude_scenes)")
        train = [c.question for c in self.questions["train"]]
        self.question_vocab = Vocabulary.build((q.text for q in train),
                                               min_count=data.vocab_min_count)
        self.answer_vocab = AnswerVocabulary(tuple(sorted({q.answer for q in train})))
        self.n_max = max(len(s.objects) for sc in self.scenes.values() for s in sc.values())
        self.sources = sources
        self.masks_kind = data.masks
        self._datasets: dict[str, object] = {}
        self._from_file: dict[str, tuple] = {}

    def chosen(self, split: str) -> list[tuple[int, ...]] | None:
        qs = self.questions[split]
        if self.masks_kind == "none":
            return None
        if self.masks_kind == "oracle":
            return [c.referred for c in qs]
        if self.masks_kind == "file":
            path = self.sources[split].masks_file
            if path is None:
                raise SettingsError("data.masks: file needs data.clevr.masks_file (a vqa-masks "
                                    "masks.npz)")
            if not Path(path).is_file():
                raise DataError(f"masks file {path} does not exist; write it with vqa-masks")
            chosen, weights, rows, stored = _masks_from_file(path, qs)
            self._from_file[split] = (weights, rows, stored)  # the image masks' blobs, as vqa-masks drew them
            return chosen
        from vqa_adapters.psl.pipeline import PipelineSettings, clevr_pipeline

        settings = PipelineSettings(rules=self.settings.psl_rules, parser=self.settings.psl_parser)
        result = clevr_pipeline([c.question for c in qs], self.scenes[split], settings,
                                reference=False)
        return [r.chosen for r in result.results]

    def dataset(self, split: str):
        if split not in self._datasets:
            qs, scenes = self.questions[split], self.scenes[split]
            chosen = self.chosen(split)
            if self.settings.input == "state":
                ds = ClevrStateDataset(qs, scenes, self.n_max, self.question_vocab,
                                       self.answer_vocab, chosen)
            else:
                ds = ClevrImageDataset(qs, scenes, self.sources[split].images,
                                       self._image_masks(split, chosen), self.question_vocab,
                                       self.answer_vocab, has_masks=chosen is not None)
            self._datasets[split] = ds
        return self._datasets[split]

    def _image_masks(self, split: str, chosen) -> np.ndarray:
        """The image input's masks at ``image_size``: each question's chosen objects' blobs, drawn
        by the same spec and rasteriser as ``vqa-masks`` (with a masks file, with its blob weights,
        and each scene checked against the one the file was made from); weight 1 otherwise."""
        from vqa_adapters.psl.facts import clevr_object_facts
        from vqa_adapters.psl.io import check_scene
        from vqa_adapters.psl.masks import render_masks
        from vqa_adapters.psl.pipeline import question_mask_spec

        w, h = self.settings.image_size
        qs, scenes = self.questions[split], self.scenes[split]
        if chosen is None:  # no teacher: zeros the OS does not commit until touched
            return np.zeros((len(qs), h, w), np.uint8)
        weights, rows, stored = self._from_file.get(split, (None, None, None))
        facts = {}
        specs = []
        for k, (c, objs) in enumerate(zip(qs, chosen)):
            i = c.question.image_index
            if i not in facts:
                facts[i] = clevr_object_facts(scenes[i])
            f = facts[i]
            if stored is not None:
                check_scene(stored, rows[k], f, c.question.question_index, i)
            wk = weights[k] if weights is not None else np.ones(len(objs), np.float32)
            try:
                specs.append(question_mask_spec(f, objs, wk))
            except IndexError:
                raise DataError(f"question {c.question.question_index}: a chosen object is not in "
                                f"scene {i}: masks of another scene file") from None
        return render_masks(specs, (w, h), "uint8")


_CACHE: dict[str, _Corpus] = {}


def load_clevr(data, split: str):
    """The ``split`` dataset of ``data`` (a ``DataSettings`` with ``kind: clevr``); the corpus is
    read once per setting and shared by its three splits (the vocabularies are the training
    split's)."""
    key = json.dumps(asdict(data), sort_keys=True, default=str)
    corpus = _CACHE.get(key)
    if corpus is None:
        corpus = _Corpus(data)
        _CACHE.clear()  # one setting at a time: a corpus holds every split's arrays
        _CACHE[key] = corpus
    return corpus.dataset(split)
