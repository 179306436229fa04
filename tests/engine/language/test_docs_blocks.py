"""Every ```psl block of the rule-language docs parses; every ```console command names files that
exist (a later doc test runs them)."""
import re
import shlex
from pathlib import Path

import pytest

from hlmrf import parse_rules

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "docs" / "rule_language.md", ROOT / "docs" / "data_formats.md"]


def blocks(lang):
    for doc in DOCS:
        for m in re.finditer(rf"```{lang}\n(.*?)```", doc.read_text(), re.S):
            yield doc.name, m.group(1)


@pytest.mark.parametrize("name, text", list(blocks("psl")))
def test_psl_blocks_parse(name, text):
    assert parse_rules(text, name).rules


@pytest.mark.parametrize("name, text", list(blocks("console")))
def test_console_blocks_name_existing_inputs(name, text):
    for line in text.splitlines():
        assert line.startswith("$ hlmrf-infer ")
        args = shlex.split(line[2:])[1:]
        inputs = [a for a in args if not a.startswith("-")][:2]
        inputs = [a for a in inputs if not a.startswith("out")]
        assert inputs and all((ROOT / a).exists() for a in inputs), line
