"""Question text for the neural VQA models: a tokenizer, a vocabulary and a GloVe loader.

:func:`tokenize` splits a question into lower-case words and punctuation marks; a
:class:`Vocabulary` is built from the training split's questions only (so validation and test
words the model never saw map to ``<unk>``) and encodes texts as padded ``int64`` id arrays;
:func:`load_glove` reads a GloVe text file line by line and returns an embedding matrix whose
rows follow the vocabulary's ids. This module is numpy only: it never imports torch (the models
wrap the matrix in an embedding layer themselves) and it never downloads anything: the user
supplies the GloVe file.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from hlmrf.errors import DataError, SettingsError

__all__ = ["PAD", "UNK", "tokenize", "Vocabulary", "GloveStats", "load_glove"]

PAD, UNK = "<pad>", "<unk>"
"""The padding word (id 0, an all-zero embedding) and the unknown word (id 1)."""

# A word is a run of letters/digits, with apostrophes only inside it ("don't", not "'tis'");
# any other non-space character (punctuation, "_", a stray apostrophe) is a token of its own.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")

GLOVE_URL = "https://nlp.stanford.edu/projects/glove/"


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and single punctuation marks.

    ``"What is the shape of the red object?"`` ->
    ``["what", "is", "the", "shape", "of", "the", "red", "object", "?"]``. A token never
    equals ``PAD`` or ``UNK`` (``"<pad>"`` splits into ``"<", "pad", ">"``).
    """
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Words and their ids: ``words[i]`` has id ``i``; ``words[0] == PAD``, ``words[1] == UNK``."""

    words: tuple[str, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        words = self.words
        if not isinstance(words, tuple):
            words = tuple(words)
            object.__setattr__(self, "words", words)
        _check_words(words)
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(words)})

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 1) -> "Vocabulary":
        """The vocabulary of ``texts``, which should be the training split's only.

        Words are ordered by decreasing count, ties by the word, so the ids do not depend on the
        order of the texts; words seen fewer than ``min_count`` times are left out (they encode
        as UNK).
        """
        if isinstance(texts, str):  # one string would be read as its characters
            raise TypeError("Vocabulary.build takes an iterable of texts, not one string; "
                            "wrap it in a list")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise SettingsError(f"min_count must be an integer >= 1, got {min_count!r}")
        counts = Counter(tok for text in texts for tok in tokenize(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK)),
                      key=lambda w: (-counts[w], w))
        return cls((PAD, UNK, *kept))

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        """The id of ``word``; the UNK id (1) for a word not in the vocabulary."""
        return self._index.get(word, 1)

    def encode(self, text: str) -> list[int]:
        """The ids of ``tokenize(text)``, UNK for unknown words."""
        index = self._index
        return [index.get(tok, 1) for tok in tokenize(text)]

    def encode_batch(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """An ``int64`` array ``(len(texts), length)`` of ids, right-padded with PAD (0).

        ``length=None`` is the longest text's token count. A text with more tokens than
        ``length`` raises :class:`DataError` rather than being cut (a cut question may ask
        something else).
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts, not one string; "
                            "use encode() or wrap it in a list")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                                   or length < 0):
            raise SettingsError(f"length must be None or an integer >= 0, got {length!r}")
        encoded = [self.encode(text) for text in texts]
        if length is None:
            length = max((len(ids) for ids in encoded), default=0)
        out = np.zeros((len(encoded), length), dtype=np.int64)
        for row, (text, ids) in enumerate(zip(texts, encoded)):
            if len(ids) > length:
                raise DataError(
                    f"text {row} {text!r} has {len(ids)} tokens, more than length={length}; "
                    f"pass a larger length (or None for the longest text)")
            out[row, :len(ids)] = ids
        return out

    def to_dict(self) -> dict:
        """A JSON-able form, ``{"words": [...]}``; :meth:`from_dict` is its inverse."""
        return {"words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        """The vocabulary that :meth:`to_dict` returned; :class:`DataError` on malformed input."""
        if not isinstance(d, dict):
            raise DataError(f"a vocabulary must be a dict {{\"words\": [...]}}, "
                            f"got {type(d).__name__}")
        unknown = sorted(map(str, set(d) - {"words"}))
        if unknown:
            raise DataError(f"unknown vocabulary keys {unknown}; the only key is \"words\"")
        if "words" not in d:
            raise DataError("the vocabulary dict has no \"words\" list")
        words = d["words"]
        if not isinstance(words, list):
            raise DataError(f"vocabulary \"words\" must be a list of strings, "
                            f"got {type(words).__name__}")
        return cls(tuple(words))


def _check_words(words: tuple) -> None:
    for i, w in enumerate(words):
        if not isinstance(w, str) or not w:
            raise DataError(f"vocabulary word {i} is {w!r}, not a non-empty string")
    if words[:2] != (PAD, UNK):
        raise DataError(f"a vocabulary starts with {PAD!r} (id 0) and {UNK!r} (id 1), "
                        f"got {list(words[:2])}")
    if len(set(words)) != len(words):
        seen, dups = set(), []
        for w in words:
            if w in seen and w not in dups:
                dups.append(w)
            seen.add(w)
        raise DataError(f"vocabulary words appear more than once: {dups[:10]}")


@dataclass(frozen=True)
class GloveStats:
    """What :func:`load_glove` found for a vocabulary (PAD and UNK not counted)."""

    found: int
    """Vocabulary words that had a vector in the file."""
    missing: tuple[str, ...]
    """Vocabulary words without one, in id order; they got random vectors."""
    dim: int
    """The vectors' dimension."""


def load_glove(path: str | os.PathLike, vocab: Vocabulary, *, dim: int | None = None,
               seed: int = 0) -> tuple[np.ndarray, GloveStats]:
    """The GloVe embedding matrix of ``vocab``, read from a GloVe text file.

    Parameters
    ----------
    path
        A GloVe text file (e.g. ``glove.6B.50d.txt`` from https://nlp.stanford.edu/projects/glove/),
        UTF-8, one ``word f1 ... fD`` line per word, space separated. It is read line by line and
        only the vectors of vocabulary words are kept, so the 5 GB ``glove.840B.300d.txt`` is fine.
        A word that appears twice keeps its first vector. The numbers are parsed (and must be
        finite) only on the lines of vocabulary words: checking every number of glove.840B would
        take minutes. The column count is checked on every line.
    vocab
        The vocabulary whose ids give the rows.
    dim
        The expected dimension D; ``None`` takes it from the first line.
    seed
        Seed of ``np.random.default_rng`` for the random rows.

    Returns
    -------
    vectors, stats
        ``float32 (len(vocab), D)``: row 0 (PAD) is zeros, a found word's row is its vector, UNK
        and the words not in the file get draws from ``N(0, sigma^2)`` with ``sigma`` the
        standard deviation of all the found vectors' entries (0.1 if that is 0), the usual
        trainable start for words GloVe lacks. ``stats`` is a :class:`GloveStats`.

    Raises
    ------
    DataError
        A missing file or a folder; a line that is not UTF-8, has the wrong number of columns
        or (for a vocabulary word) numbers that are not finite floats, named ``file:line``; an
        empty file or one in which no vocabulary word has a vector (almost surely the wrong file).
    """
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise SettingsError(f"dim must be None or an integer >= 1, got {dim!r}")
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise DataError(
            f"GloVe file not found. GloVe vectors are not downloaded by vqa_adapters: download "
            f"them from {GLOVE_URL} (e.g. glove.6B.zip), unzip, and pass the path of a text "
            f"file such as glove.6B.50d.txt", where)
    if path.is_dir():
        raise DataError("is a folder, not a GloVe text file; pass the path of a file in it "
                        "such as glove.6B.50d.txt", where)
    if len(vocab) <= 2:
        raise DataError("the vocabulary has no words besides <pad> and <unk>: build it from "
                        "the training questions first", where)

    # Only real words are looked up: PAD stays zero and UNK random even if the file has "<unk>".
    rows = {w: i for i, w in enumerate(vocab.words) if i >= 2}
    expected_from = "the dim argument" if dim is not None else "line 1"
    vectors: np.ndarray | None = None
    found = np.zeros(len(vocab), dtype=bool)
    any_line = False
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno == 1:
                _check_not_archive(raw, where)
                if raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line; "
                    f"GloVe text files are UTF-8: is this the right file?", where, lineno) from None
            line = line.rstrip("\r\n ")
            if not line:  # a blank (e.g. final) line carries nothing
                continue
            any_line = True
            n = line.count(" ")
            if dim is None:
                dim = n
                if dim < 1:
                    raise DataError("the first line has a word but no numbers; a GloVe line is "
                                    "'word f1 ... fD'", where, lineno)
            word, numbers = _split_line(line, n, dim, where, lineno, expected_from)
            i = rows.get(word)
            if i is None or found[i]:  # not ours, or a duplicate: the first vector stays
                continue
            try:
                v = np.array(numbers, dtype=np.float32)
            except ValueError:
                bad = next(s for s in numbers if not _is_float(s))
                raise DataError(f"{bad!r} is not a number (word {word!r})", where, lineno) from None
            if not np.all(np.isfinite(v)):
                raise DataError(f"word {word!r} has a non-finite value (nan or inf)", where, lineno)
            if vectors is None:
                vectors = np.zeros((len(vocab), dim), dtype=np.float32)
            vectors[i] = v
            found[i] = True

    if not any_line:
        raise DataError("the GloVe file is empty", where)
    n_found = int(found.sum())
    if n_found == 0:
        examples = ", ".join(repr(w) for w in vocab.words[2:7])
        raise DataError(
            f"none of the vocabulary's {len(vocab) - 2} words (e.g. {examples}) has a vector in "
            f"this file, so every embedding would be random: almost certainly the wrong file "
            f"(expected a GloVe text file such as glove.6B.50d.txt)", where)

    sigma = float(vectors[found].std())
    if sigma == 0.0:  # e.g. one found word of dimension 1: keep the random rows random
        sigma = 0.1
    random_rows = np.flatnonzero(~found)[1:]  # UNK and the missing words; not PAD (row 0)
    rng = np.random.default_rng(seed)
    vectors[random_rows] = rng.normal(0.0, sigma, size=(len(random_rows), dim)).astype(np.float32)
    missing = tuple(vocab.words[i] for i in random_rows if i >= 2)
    return vectors, GloveStats(found=n_found, missing=missing, dim=dim)


def _split_line(line: str, n: int, dim: int, where: str, lineno: int,
                expected_from: str) -> tuple[str, list[str]]:
    """Split a GloVe line into its word and its ``dim`` number fields, or raise."""
    if n == dim:
        word, _, rest = line.partition(" ")
        return word, rest.split(" ")
    fields = line.split(" ")
    extra = n - dim
    # glove.840B has a few words with spaces in them ("at name@domain.com"); a line is read so
    # only when the extra fields are non-empty and not numbers, so a line with one number too
    # many, or a double space, is an error.
    inner = fields[1:1 + extra]
    if extra > 0 and all(inner) and not any(_is_float(s) for s in inner):
        return " ".join(fields[:1 + extra]), fields[1 + extra:]
    hint = ""
    if lineno == 1 and len(fields) == 2 and all(s.isdigit() for s in fields):
        hint = ("; this looks like a word2vec header line ('count dim'), which GloVe text files "
                "do not have: remove it")
    raise DataError(f"{n} numbers, expected {dim} (from {expected_from}){hint}", where, lineno)


def _check_not_archive(head: bytes, where: str) -> None:
    if head.startswith(b"PK\x03\x04"):
        raise DataError("is a zip archive: unzip it and pass one of the .txt files in it "
                        "(e.g. glove.6B.50d.txt)", where)
    if head.startswith(b"\x1f\x8b"):
        raise DataError("is gzip-compressed: decompress it and pass the .txt file", where)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
