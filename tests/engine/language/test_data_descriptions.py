"""PSL's data descriptions (.data YAML, JSON/YAML configs) and the three ways hlmrf-infer is run."""
import json
import shutil

import pytest

from hlmrf.cli.infer import main
from hlmrf.data.descriptions import load_config, load_data_file, load_inputs
from hlmrf.errors import DataError, RuleSyntaxError

RULES = ("20: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2\n"
         "5: Lived(P1, L1) & Lived(P2, L2) & (P1 != P2) & (L1 != L2) -> !Knows(P1, P2) ^2\n"
         "10: Likes(P1, L) & Likes(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2\n"
         "5: Knows(P1, P2) & Knows(P2, P3) & (P1 != P3) -> Knows(P1, P3) ^2\n"
         "Knows(P1, P2) = Knows(P2, P1) .\n5: !Knows(P1, P2) ^2\n")

DATA = """predicates:
  Knows/2: open
  Likes/2: closed
  Lived: closed

observations:
  Knows : ../data/knows_obs.txt
  Lived : ../data/lived_obs.txt
  Likes : [../data/likes_obs.txt]

targets:
  Knows : ../data/knows_targets.txt

truth:
  Knows : ../data/knows_truth.txt
"""


@pytest.fixture
def layout(tmp_path, examples):
    shutil.copytree(examples / "simple-acquaintances" / "facts", tmp_path / "data")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "model.psl").write_text(RULES)
    (tmp_path / "cli" / "model.data").write_text(DATA)
    return tmp_path


def _config(rules, **extra):
    return {"rules": rules, "predicates": {
        "Likes/2": {"observations": ["../data/likes_obs.txt"]},
        "Lived/2": {"observations": ["../data/lived_obs.txt"]},
        "Knows/2": {"evaluations": ["DiscreteEvaluator"],
                    "observations": {"learn": ["nope.txt"], "infer": ["../data/knows_obs.txt"]},
                    "targets": ["../data/knows_targets.txt"], "truth": ["../data/knows_truth.txt"]}},
            **extra}


def test_data_file_loads_like_the_facts_directory(layout):
    from hlmrf.api import load_facts, load_rules

    prog = load_rules(layout / "cli" / "model.psl")
    arities = {k: n for k, (_, n, _) in prog.predicates().items()}  # decide value vs argument
    a = load_data_file(layout / "cli" / "model.data", arities)
    b = load_facts(layout / "data", prog)
    for key in ("KNOWS", "LIKES", "LIVED"):
        assert len(a.get(key).obs_args) == len(b.get(key).obs_args)
    assert len(a.get("KNOWS").target_args) == 118 and a.get("KNOWS").open and not a.get("LIVED").open


def test_three_command_lines_give_the_same_answer(layout, capsys):
    cfg = layout / "cli" / "model.json"
    text = json.dumps(_config([r for r in RULES.splitlines()], options={
        "runtime.db.intids": True, "admmreasoner.maxiterations": 25000}), indent=2)
    cfg.write_text("// psl-examples configs carry comments\n" + text.replace(
        '"predicates"', '# a comment\n  "predicates"'))
    outs = []
    for argv in ([str(layout / "cli" / "model.psl"), str(layout / "data")],
                 [str(layout / "cli" / "model.psl"), str(layout / "cli" / "model.data")],
                 [str(cfg)]):
        out = layout / f"out{len(outs)}"
        assert main(argv + ["-o", str(out)]) == 0
        text = capsys.readouterr().out
        assert "grounding: 4,532 ground rules" in text and "energy 343.92" in text
        outs.append((out / "KNOWS.txt").read_text())
    assert outs[0] == outs[1] == outs[2]
    assert "ignoring config option(s) with no hlmrf equivalent: runtime.db.intids" in text


def test_yaml_config_with_rule_file_and_inline_rows(tmp_path):
    yaml = pytest.importorskip("yaml")
    (tmp_path / "r.psl").write_text("0.5: Smokes(X) -> Cancer(X) ^2\n0.01: !Cancer(X)\n")
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({
        "rules": "r.psl",
        "predicates": {"Smokes/1": {"observations": [["Anna"], ["Bob", 0.5]]},
                       "Cancer/1": {"targets": [["Anna"], ["Bob"]],
                                    "truth": [["Anna", 1], ["Bob", 0]]}}}))
    program, store, options = load_config(tmp_path / "m.yaml")
    assert len(program.rules) == 2 and options == {}
    assert store.get("Smokes").obs_values.tolist() == [1.0, 0.5]
    assert store.get("Cancer").truth_values.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("doc, words", [
    ("predicates:\n  Knows/2: maybe\n", "write `open` or `closed`"),
    ("predicate:\n  Knows/2: open\n", "unknown section(s) predicate"),
    ("predicates:\n  Knows/2: open\nobservations:\n  Knows: missing.txt\n", "does not exist"),
    ("predicates:\n  Knows/3: open\n", "declared with arity 3, but the rules use Knows with 2"),
    ("predicates:\n  Lived/2: closed\ntargets:\n  Lived: ../data/lived_obs.txt\n",
     "declared closed but has targets"),
])
def test_bad_data_files_name_the_file_and_the_fix(layout, doc, words):
    path = layout / "cli" / "bad.data"
    path.write_text(doc)
    with pytest.raises(DataError) as info:
        load_inputs(layout / "cli" / "model.psl", path)
    assert words in str(info.value) and "bad.data" in str(info.value)


def test_bad_configs_are_reported(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"rules": ["1: A(X) -> B(X) ^3"], "predicates": {}}')
    with pytest.raises(ValueError, match=r"c.json:rules:1:18: the exponent must be 1 or 2"):
        load_config(p)
    p.write_text('{"rules": ["1: A(X)"], "predicates": {"A/1": {"function": "x"}}}')
    with pytest.raises(DataError, match="unsupported key"):
        load_config(p)
    p.write_text('{"rules": [], "extra": 1}')
    with pytest.raises(DataError, match="unknown key"):
        load_config(p)
    p.write_text('{"rules": [], "predicates": {}}')
    with pytest.raises(RuleSyntaxError, match=r"c.json:rules:1:1: the rule file has no rules"):
        load_config(p)
    with pytest.raises(DataError, match="must be a JSON or YAML config"):
        load_inputs(tmp_path / "rules.psl")


def test_ground_rules_file_shows_rules_with_constants(layout, capsys):
    out = layout / "gr.txt"
    assert main([str(layout / "cli" / "model.psl"), str(layout / "data"), "-o", str(layout / "o"),
                 "--ground-rules", str(out), "-q"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4532
    assert lines[0].startswith("20.0: LIVED('0', '4') & LIVED('1', '4') & ('0' != '1') -> KNOWS('0', '1') ^2")
    assert "   # 1 * max(0, - Knows(0, 1) + 1)^2" in lines[0]
