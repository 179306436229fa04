"""Reading and writing Sort-of-CLEVR datasets on disk (the format is documented in docs/sort_of_clevr.md).

Per split ``DIR/<split>.npz`` holds the arrays (``images``, ``questions``, ``answers``,
``question_types``) and ``DIR/<split>.json`` the scene graphs and question records;
``DIR/dataset.json`` holds the settings and vocabularies. The folder is published in one step
(:class:`hlmrf.infra.FileSet`): all files appear together or not at all, even on a kill.
The ``.npz`` files are zip archives with fixed timestamps, so the same settings give the same bytes
(``numpy.savez_compressed`` stamps the current time). This module only moves values between memory
and disk; generation is in :mod:`.generate`, and it never prints.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hlmrf.errors import DataError, SettingsError
from hlmrf.infra import FileSet

from .generate import SortOfClevrSplit, generate_split
from .questions import Question
from .scene import Scene, SceneObject
from .settings import SPLITS, SortOfClevrSettings, split_seed
from .vocab import (
    ANSWER_INDEX,
    ANSWERS,
    COLOR_RGB,
    COLORS,
    QUESTION_DIM,
    SHAPE_ANSWER,
    SHAPES,
    TEMPLATES,
    QuestionType,
)

__all__ = ["FORMAT", "write_dataset", "load_sort_of_clevr", "dataset_metadata", "split_to_json"]

#: Format tag written in every JSON file; bumped when the layout changes.
FORMAT = "sort-of-clevr/1"
_ARRAYS = ("images", "questions", "answers", "question_types")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def dataset_metadata(settings: SortOfClevrSettings) -> dict[str, Any]:
    """The content of ``dataset.json``: settings, seeds and vocabularies."""
    q = settings.questions_per_image
    return {
        "format": FORMAT,
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "rng": "numpy.random.Generator(PCG64(SeedSequence(entropy))) per split",
        "splits": {
            s: {"images": settings.count(s), "questions": settings.count(s) * q,
                "entropy": list(split_seed(settings.seed, s))}
            for s in SPLITS
        },
        "colors": list(COLORS),
        "color_rgb": {c: list(COLOR_RGB[c]) for c in COLORS},
        "shapes": list(SHAPES),
        "shape_answer": dict(SHAPE_ANSWER),
        "answers": list(ANSWERS),
        "question_types": [
            {"code": int(t), "name": t.name.lower(), "relational": t.relational,
             "subtype": t.subtype, "template": TEMPLATES[t]}
            for t in QuestionType
        ],
        "question_vector": [*COLORS, "non_relational", "relational",
                            "subtype_0", "subtype_1", "subtype_2"],
        "geometry": ("pixel image[r, c] covers [c, c+1) x [r, r+1); an object centred at integer "
                     "(x, y) with size s covers [x-s, x+s) x [y-s, y+s) (square) or the disc of "
                     "radius s (circle); x grows rightwards, y downwards"),
    }


def _scene_json(index: int, scene: Scene, records: tuple[Question, ...]) -> dict[str, Any]:
    return {
        "image_index": index,
        "objects": [o.to_dict() for o in scene.objects],
        "questions": [
            {"type": q.qtype.name.lower(), "type_code": int(q.qtype), "color": COLORS[q.color],
             "text": q.text, "answer": q.answer_word, "objects": list(q.objects)}
            for q in records
        ],
    }


def split_to_json(data: SortOfClevrSplit) -> str:
    """The ``<split>.json`` text: a header, then one scene per line (valid JSON, greppable)."""
    head = json.dumps({"format": FORMAT, "split": data.split, "image_size": data.settings.size,
                       "questions_per_image": data.settings.questions_per_image},
                      separators=(",", ":"))
    lines = [json.dumps(_scene_json(i, s, r), separators=(",", ":"))
             for i, (s, r) in enumerate(zip(data.scenes, data.records))]
    return head[:-1] + ',"scenes":[\n' + ",\n".join(lines) + "\n]}\n"


def _write_npz(fileobj, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed member timestamps (byte-reproducible)."""
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def write_dataset(out_dir: str | os.PathLike, settings: SortOfClevrSettings,
                  on_progress: Callable[[int], None] | None = None) -> list[Path]:
    """Generate every split and write the dataset under ``out_dir``; return the files written.

    The folder is published whole (:class:`hlmrf.infra.FileSet`): nothing appears until every
    split has been generated and written, a failure or a kill leaves the previous folder as it
    was, and files the user keeps there (a ``masks`` folder from ``vqa-masks``) stay.
    """
    from ..outputs import check_run_folder

    check_run_folder(out_dir)
    fs = FileSet(out_dir)  # checks the folder before generating anything
    with fs:
        for split in SPLITS:
            data = generate_split(settings, split, on_progress)
            buf = io.BytesIO()
            _write_npz(buf, {k: getattr(data, k) for k in _ARRAYS})
            fs.add(f"{split}.npz", buf.getvalue())
            del buf
            fs.add(f"{split}.json", split_to_json(data))
            del data
        fs.add("dataset.json", json.dumps(dataset_metadata(settings), indent=2) + "\n")
    return [fs.dest / f"{split}.{ext}" for split in SPLITS for ext in ("npz", "json")] + \
        [fs.dest / "dataset.json"]


def _read_json(path: Path) -> Any:
    from ..clevr.io import read_json_document

    if not os.path.lexists(path):
        raise DataError("file not found; generate the dataset with vqa-sort-of-clevr --out DIR",
                        str(path))
    return read_json_document(path)


def load_sort_of_clevr(root: str | os.PathLike, split: str) -> SortOfClevrSplit:
    """Load ``split`` ("train", "val" or "test") of the dataset under ``root``."""
    root = Path(root)
    if split not in SPLITS:
        raise SettingsError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    meta_path = root / "dataset.json"
    meta = _read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"expected format {FORMAT!r}, got {meta.get('format') if isinstance(meta, dict) else meta!r}",
                        str(meta_path))
    try:
        settings = SortOfClevrSettings.from_dict(meta["settings"])
    except (KeyError, TypeError, SettingsError) as exc:
        raise DataError(f"bad settings: {exc}", str(meta_path)) from None

    npz_path = root / f"{split}.npz"
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS}
    except FileNotFoundError:
        raise DataError("file not found; generate the dataset with vqa-sort-of-clevr --out DIR",
                        str(npz_path)) from None
    except OSError as exc:
        if exc.errno is not None and not isinstance(exc, IsADirectoryError):
            raise  # permission denied, I/O error: the system's problem, not the file's
        raise DataError(f"not a Sort-of-CLEVR array file: {exc}", str(npz_path)) from None
    except (KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"not a Sort-of-CLEVR array file: {exc}", str(npz_path)) from None

    n, q, h = settings.count(split), settings.questions_per_image, settings.size
    expected = {"images": ((n, h, h, 3), np.uint8), "questions": ((n, q, QUESTION_DIM), np.uint8),
                "answers": ((n, q), np.int64), "question_types": ((n, q), np.int8)}
    for k, (shape, dtype) in expected.items():
        a = arrays[k]
        if a.shape != shape or a.dtype != dtype:
            raise DataError(f"{k} is {a.dtype}{a.shape}, expected {np.dtype(dtype)}{shape} "
                            f"from dataset.json", str(npz_path))

    json_path = root / f"{split}.json"
    doc = _read_json(json_path)
    scenes, records = _parse_scenes(doc, settings, str(json_path))
    if len(scenes) != n:
        raise DataError(f"{len(scenes)} scenes, expected {n} from dataset.json", str(json_path))
    return SortOfClevrSplit(split, arrays["images"], arrays["questions"], arrays["answers"],
                            arrays["question_types"], scenes, records, settings)


def _parse_scenes(doc: Any, settings: SortOfClevrSettings, path: str):
    """The scene records of ``<split>.json``, every value checked against its type and range
    (a :class:`~vqa_adapters.clevr.errors.ClevrDataError`, a DataError, names the JSON path)."""
    from ..clevr.io import _err, _int, _key, _list, _obj, _show, _str

    def choice(value, allowed, where):
        if not isinstance(value, str) or value not in allowed:
            raise _err(f"{where}: {_show(value)} is not one of {', '.join(allowed)}", path)
        return value

    side = settings.size
    scenes: list[Scene] = []
    records: list[tuple[Question, ...]] = []
    doc = _obj(doc, "document", path)
    for i, rec in enumerate(_list(_key(doc, "scenes", "document", path), "scenes", path)):
        w = f"scenes[{i}]"
        rec = _obj(rec, w, path)
        objects = []
        for j, o in enumerate(_list(_key(rec, "objects", w, path), f"{w}.objects", path)):
            ow = f"{w}.objects[{j}]"
            o = _obj(o, ow, path)
            xy = [_int(_key(o, k, ow, path), f"{ow}.{k}", path) for k in ("x", "y", "size")]
            if not (0 <= xy[0] < side and 0 <= xy[1] < side and 0 < xy[2] <= side):
                raise _err(f"{ow}: x, y, size {xy} outside the {side}x{side} image", path)
            objects.append(SceneObject(choice(_key(o, "color", ow, path), COLORS, f"{ow}.color"),
                                       choice(_key(o, "shape", ow, path), SHAPES, f"{ow}.shape"), *xy))
        scenes.append(Scene(side, tuple(objects)))
        qs = []
        for k, q in enumerate(_list(_key(rec, "questions", w, path), f"{w}.questions", path)):
            qw = f"{w}.questions[{k}]"
            q = _obj(q, qw, path)
            code = _int(_key(q, "type_code", qw, path), f"{qw}.type_code", path)
            if code not in {int(t) for t in QuestionType}:
                raise _err(f"{qw}.type_code: {code} is not a question type (0..{len(QuestionType) - 1})", path)
            refs = _list(_key(q, "objects", qw, path), f"{qw}.objects", path)
            for r, j in enumerate(refs):
                if not 0 <= _int(j, f"{qw}.objects[{r}]", path) < len(objects):
                    raise _err(f"{qw}.objects[{r}]: {j} is not an object of the scene", path)
            qs.append(Question(QuestionType(code),
                               COLORS.index(choice(_key(q, "color", qw, path), COLORS, f"{qw}.color")),
                               _str(_key(q, "text", qw, path), f"{qw}.text", path),
                               ANSWER_INDEX[choice(_key(q, "answer", qw, path), ANSWERS, f"{qw}.answer")],
                               tuple(refs)))
        records.append(tuple(qs))
    return tuple(scenes), tuple(records)
