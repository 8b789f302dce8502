"""suites/suite.schema.json (`gan-bench schema`): in sync with the pydantic models, named by
every suite's first line, and it accepts every committed suite and rejects what the models
reject that a schema can express (an unknown key, a wrong type, a bad enum value)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import cli_main

from gan_bench.config.json_schema import MODELINE, SCHEMA_FILE, schema_text

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
EXAMPLES = sorted((ROOT / "benchmark" / "examples").glob("*/suite*.yaml"))
ALL_SUITES = sorted(SUITES.glob("*.yaml")) + EXAMPLES
SCHEMA = json.loads((SUITES / SCHEMA_FILE).read_text())


def test_schema_file_matches_the_code():
    assert (SUITES / SCHEMA_FILE).read_text() == schema_text(), (
        "suites/suite.schema.json is stale: run `gan-bench schema --out suites/suite.schema.json`")


def test_schema_command_prints_and_writes_the_same_text(monkeypatch, capsys, tmp_path):
    code, out, _ = cli_main(monkeypatch, capsys, "schema")
    assert code == 0 and out == schema_text()
    code, _, _ = cli_main(monkeypatch, capsys, "schema", "--out", str(tmp_path / "s.json"))
    assert code == 0 and (tmp_path / "s.json").read_text() == schema_text()


@pytest.mark.parametrize("path", ALL_SUITES, ids=lambda p: p.name)
def test_every_suite_names_the_schema_and_passes_it(path):
    first = path.read_text().splitlines()[0]
    rel = Path(first.split("$schema=", 1)[-1])
    assert first.startswith("# yaml-language-server: $schema="), f"{path.name}: first line {first!r}"
    assert (path.parent / rel).resolve() == (SUITES / SCHEMA_FILE).resolve()
    if path.parent == SUITES:
        assert first == MODELINE
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_schema_has_the_field_comments_as_descriptions():
    budget = SCHEMA["$defs"]["Budget"]["properties"]
    assert budget["trials"]["description"].startswith("no default: the main cost knob")
    assert SCHEMA["$defs"]["DatasetSpec"]["properties"]["eval_split"]["description"].startswith(
        "Lucic 2018: FID against the TEST split")


@pytest.mark.parametrize("damage", [
    lambda s: s.update(budgett={"trials": 2}),  # a typo of a top-level key
    lambda s: s["budget"].update(trials="2"),  # a quoted count
    lambda s: s["sampler"].update(name="tpee"),  # an unknown sampler
    lambda s: s["gans"][0].update(lr=1e-3),  # an unknown key of a GAN
], ids=["unknown-key", "string-count", "bad-enum", "unknown-gan-key"])
def test_schema_rejects_what_an_editor_should_flag(damage):
    suite = yaml.safe_load((SUITES / "quickstart.yaml").read_text())
    bad = copy.deepcopy(suite)
    damage(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
