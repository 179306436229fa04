"""vqa_adapters.text: tokenizer, vocabulary and GloVe loader, on small files written here."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmrf.errors import DataError, SettingsError
from vqa_adapters.text import PAD, UNK, GloveStats, Vocabulary, load_glove, tokenize


# ----------------------------------------------------------------------------------- tokenize

@pytest.mark.parametrize("text, tokens", [
    ("What is the shape of the red object?",
     ["what", "is", "the", "shape", "of", "the", "red", "object", "?"]),
    ("Is there a BIG cube, or a sphere.", ["is", "there", "a", "big", "cube", ",", "or", "a",
                                           "sphere", "."]),
    ("Don't count 3 cubes!", ["don't", "count", "3", "cubes", "!"]),
    ("'quoted' words", ["'", "quoted", "'", "words"]),
    ("  tabs\tand\nnewlines  ", ["tabs", "and", "newlines"]),
    ("left-of the x2 ball;", ["left", "-", "of", "the", "x2", "ball", ";"]),
    ("Café ÜBER", ["café", "über"]),
    ("<pad> <unk>", ["<", "pad", ">", "<", "unk", ">"]),
    ("", []),
])
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


# --------------------------------------------------------------------------------- Vocabulary

TRAIN = ["What is the red cube?", "What color is the cube?", "Is the ball red?"]


def test_build_orders_by_count_then_word_and_reserves_pad_unk():
    vocab = Vocabulary.build(TRAIN)
    # the:3  ?:3  is:3  cube:2  red:2  what:2  ball color:1
    assert vocab.words == (PAD, UNK, "?", "is", "the", "cube", "red", "what", "ball", "color")
    assert vocab.id(PAD) == 0 and vocab.id(UNK) == 1
    assert len(vocab) == 10
    assert Vocabulary.build(reversed(TRAIN)) == vocab  # independent of the texts' order


def test_build_min_count():
    vocab = Vocabulary.build(TRAIN, min_count=2)
    assert vocab.words == (PAD, UNK, "?", "is", "the", "cube", "red", "what")
    assert vocab.encode("the ball") == [vocab.id("the"), 1]
    assert Vocabulary.build(TRAIN, min_count=4).words == (PAD, UNK)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SettingsError, match="min_count"):
            Vocabulary.build(TRAIN, min_count=bad)
    with pytest.raises(TypeError, match="not one string"):
        Vocabulary.build("What is it?")


def test_encode_unknown_words():
    vocab = Vocabulary.build(TRAIN)
    ids = vocab.encode("What is the GREEN cube?")
    assert ids == [vocab.id("what"), vocab.id("is"), vocab.id("the"), 1, vocab.id("cube"),
                   vocab.id("?")]
    assert vocab.id("green") == 1
    assert vocab.encode("") == []


def test_encode_batch_pads_right_with_zero():
    vocab = Vocabulary.build(TRAIN)
    out = vocab.encode_batch(["the cube", "is the ball red ?", "zebra"])
    assert out.dtype == np.int64 and out.shape == (3, 5)
    assert out[0].tolist() == vocab.encode("the cube") + [0, 0, 0]
    assert out[1].tolist() == vocab.encode("is the ball red ?")
    assert out[2].tolist() == [1, 0, 0, 0, 0]
    wide = vocab.encode_batch(["the cube"], length=4)
    assert wide.tolist() == [vocab.encode("the cube") + [0, 0]]
    assert vocab.encode_batch([]).shape == (0, 0)
    assert vocab.encode_batch(["", ""]).shape == (2, 0)


def test_encode_batch_too_long_names_text_and_length():
    vocab = Vocabulary.build(TRAIN)
    with pytest.raises(DataError) as err:
        vocab.encode_batch(["the cube", "is the ball red?"], length=3)
    msg = str(err.value)
    assert "'is the ball red?'" in msg and "5 tokens" in msg and "length=3" in msg
    with pytest.raises(SettingsError, match="length"):
        vocab.encode_batch(["x"], length=-1)


def test_to_dict_from_dict_round_trip_through_json():
    vocab = Vocabulary.build(TRAIN)
    d = json.loads(json.dumps(vocab.to_dict()))
    assert d == {"words": list(vocab.words)}
    back = Vocabulary.from_dict(d)
    assert back == vocab and back.words == vocab.words
    assert back.encode("the red ball") == vocab.encode("the red ball")


@pytest.mark.parametrize("d, match", [
    (["<pad>", "<unk>"], "must be a dict"),
    ({}, "no \"words\""),
    ({"words": [PAD, UNK], "extra": 1}, "unknown vocabulary keys \\['extra'\\]"),
    ({"words": "<pad> <unk>"}, "list of strings"),
    ({"words": [PAD, UNK, 3]}, "word 2 is 3"),
    ({"words": [PAD, UNK, ""]}, "word 2 is ''"),
    ({"words": [UNK, PAD, "a"]}, "starts with '<pad>'"),
    ({"words": ["a", "b"]}, "starts with '<pad>'"),
    ({"words": [PAD]}, "starts with '<pad>'"),
    ({"words": [PAD, UNK, "a", "b", "a"]}, "more than once: \\['a'\\]"),
])
def test_from_dict_malformed(d, match):
    with pytest.raises(DataError, match=match):
        Vocabulary.from_dict(d)


_word = st.text(alphabet="abcxyz019'", min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(train=st.lists(st.lists(_word, max_size=6), max_size=6),
       other=st.lists(_word, max_size=8), min_count=st.integers(1, 3))
def test_property_encode_then_decode_gives_tokens_or_unk(train, other, min_count):
    vocab = Vocabulary.build([" ".join(ws) for ws in train], min_count=min_count)
    text = " ".join(other)
    decoded = [vocab.words[i] for i in vocab.encode(text)]
    tokens = tokenize(text)
    assert decoded == [t if t in vocab.words else UNK for t in tokens]
    assert PAD not in decoded
    counts = {}
    for t in tokenize(" ".join(w for ws in train for w in ws)):
        counts[t] = counts.get(t, 0) + 1
    assert set(vocab.words[2:]) == {t for t, c in counts.items() if c >= min_count}


# --------------------------------------------------------------------------------- load_glove

GLOVE = {
    "the": [0.1, -0.2, 0.3],
    ",": [1.0, 2.0, 3.0],
    "cube": [-1.5, 0.25, 4.0],
    "red": [0.0, 0.5, -0.5],
    "sphere": [9.0, 9.0, 9.0],  # not in the vocabulary below
}


def _write(path, lines, encoding="utf-8"):
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _glove_lines(table=GLOVE):
    return [w + " " + " ".join(repr(x) for x in v) for w, v in table.items()]


@pytest.fixture
def vocab():
    return Vocabulary.from_dict({"words": [PAD, UNK, "the", "cube", "red", "ball", "what", "?"]})


def test_load_glove_places_vectors_by_id(tmp_path, vocab):
    path = _write(tmp_path / "glove.txt", _glove_lines())
    vectors, stats = load_glove(path, vocab)
    assert vectors.dtype == np.float32 and vectors.shape == (8, 3)
    assert np.all(vectors[0] == 0)
    for word in ("the", "cube", "red"):
        np.testing.assert_array_equal(vectors[vocab.id(word)], np.float32(GLOVE[word]))
    assert stats == GloveStats(found=3, missing=("ball", "what", "?"), dim=3)
    # UNK and the missing words are random, non-zero and distinct
    random_rows = vectors[[1, 5, 6, 7]]
    assert np.all(random_rows != 0) and len({tuple(r) for r in random_rows}) == 4
    # str paths work as well, and the same seed gives the same matrix; another seed another
    again, _ = load_glove(str(path), vocab, dim=3)
    np.testing.assert_array_equal(again, vectors)
    other, _ = load_glove(path, vocab, seed=1)
    np.testing.assert_array_equal(other[[0, 2, 3, 4]], vectors[[0, 2, 3, 4]])
    assert not np.array_equal(other[[1, 5, 6, 7]], random_rows)


def test_load_glove_random_rows_have_the_std_of_the_found_vectors(tmp_path):
    rng = np.random.default_rng(123)
    words = [f"w{i}" for i in range(200)]
    table = {w: rng.normal(0.0, 0.7, size=50).round(5).tolist() for w in words[:100]}
    path = _write(tmp_path / "g.txt", _glove_lines(table))
    vocab = Vocabulary((PAD, UNK, *words))
    vectors, stats = load_glove(path, vocab, seed=5)
    assert stats.found == 100 and stats.missing == tuple(words[100:]) and stats.dim == 50
    sigma = np.std(np.array(list(table.values())))
    random_part = vectors[[1] + list(range(102, 202))]
    assert abs(random_part.std() / sigma - 1) < 0.05
    assert abs(random_part.mean()) < 0.05


def test_load_glove_duplicates_keep_first_and_unk_pad_are_not_read(tmp_path, vocab):
    lines = _glove_lines() + ["the 7 7 7", "<unk> 5 5 5", "<pad> 6 6 6", ""]
    path = _write(tmp_path / "glove.txt", lines)
    vectors, stats = load_glove(path, vocab)
    np.testing.assert_array_equal(vectors[vocab.id("the")], np.float32(GLOVE["the"]))
    assert np.all(vectors[0] == 0) and not np.any(vectors[1] == 5)
    assert stats.found == 3


def test_load_glove_tolerates_crlf_trailing_space_bom_and_words_with_spaces(tmp_path, vocab):
    raw = ("\ufeffthe 0.1 -0.2 0.3 \r\n"
           "at name@domain.com 1 1 1\r\n"      # a glove.840B word with a space in it
           "cube -1.5 0.25 4\r\n")
    path = tmp_path / "glove.txt"
    path.write_bytes(raw.encode("utf-8"))
    vectors, stats = load_glove(path, vocab)
    np.testing.assert_array_equal(vectors[vocab.id("the")], np.float32([0.1, -0.2, 0.3]))
    np.testing.assert_array_equal(vectors[vocab.id("cube")], np.float32([-1.5, 0.25, 4]))
    assert stats.found == 2


def test_load_glove_missing_file(tmp_path, vocab):
    path = tmp_path / "glove.6B.50d.txt"
    with pytest.raises(DataError) as err:
        load_glove(path, vocab)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "not found" in msg
    assert "not downloaded" in msg and "https://nlp.stanford.edu/projects/glove/" in msg
    assert err.value.path == str(path) and err.value.line is None


def test_load_glove_folder(tmp_path, vocab):
    with pytest.raises(DataError, match="is a folder"):
        load_glove(tmp_path, vocab)


@pytest.mark.parametrize("lines, kwargs, line, match", [
    # a bad float on a vocabulary word's line
    (["the 0.1 0.2 0.3", "cube 1.0 x1.5 2.0"], {}, 2, "'x1.5' is not a number"),
    (["the 0.1 0.2 0.3", "red 1.0 nan 2.0"], {}, 2, "non-finite"),
    # column counts: from the first line, or from the dim argument
    (["the 0.1 0.2 0.3", "other 1 2"], {}, 2, "2 numbers, expected 3 \\(from line 1\\)"),
    (["the 0.1 0.2 0.3", "cube 1 2 3 4"], {}, 2, "4 numbers, expected 3"),
    (["the 0.1 0.2 0.3", "cube  1 2 3"], {}, 2, "4 numbers, expected 3"),
    (["the 0.1 0.2 0.3"], {"dim": 50}, 1, "3 numbers, expected 50 \\(from the dim argument\\)"),
    (["400000 3", "the 1 2 3"], {}, 2, "3 numbers, expected 1"),
    (["400000 3", "the 1 2 3"], {"dim": 3}, 1, "word2vec header"),
    (["the"], {}, 1, "no numbers"),
])
def test_load_glove_line_errors_name_file_and_line(tmp_path, vocab, lines, kwargs, line, match):
    path = _write(tmp_path / "glove.txt", lines)
    with pytest.raises(DataError, match=match) as err:
        load_glove(path, vocab, **kwargs)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert err.value.line == line


def test_load_glove_bad_utf8(tmp_path, vocab):
    path = tmp_path / "glove.txt"
    path.write_bytes(b"the 0.1 0.2 0.3\ncaf\xe9 1 2 3\n")
    with pytest.raises(DataError, match="not UTF-8: byte 0xe9") as err:
        load_glove(path, vocab)
    assert str(err.value).startswith(f"{path}:2: ")


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"sphere 1 2 3\ncone 4 5 6\n", "none of the vocabulary's 6 words .* wrong file"),
    (b"PK\x03\x04rest", "zip archive"),
])
def test_load_glove_file_errors(tmp_path, vocab, content, match):
    path = tmp_path / "glove.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        load_glove(path, vocab)
    assert str(err.value).startswith(f"{path}: ")


def test_load_glove_bad_arguments(tmp_path, vocab):
    path = _write(tmp_path / "glove.txt", _glove_lines())
    with pytest.raises(SettingsError, match="dim"):
        load_glove(path, vocab, dim=0)
    with pytest.raises(DataError, match="no words besides"):
        load_glove(path, Vocabulary((PAD, UNK)))


def test_text_module_does_not_import_torch():
    code = "import sys, vqa_adapters.text; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
