"""The report's "Checked against the papers" section (report/checks.py) and `gan-bench theory`.

On the tiny ring8 run of conftest (toy_mlp, non-saturating, 60 iterations): the first report
computes the checks of the best finalist and logs them as artifacts of its run; the second
reads them back (nothing is computed again) and renders the same markdown and figures. The
numbers themselves are tested in tests/test_theory_checks.py, test_latent.py and
test_data_copying.py; here: that they reach the report, the store and the command line.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import SMOKE_SUITE, cli_main

from gan_bench.report import checks, collect, render

BUDGET_S = 3.0  # D trained alone for a few seconds: enough to exercise every part


@pytest.fixture
def checks_on(monkeypatch):
    monkeypatch.setenv(checks.ENV, "on")
    monkeypatch.setattr(checks, "THEORY_BUDGET_S", BUDGET_S)


def _finalist_checkpoints(run_dir):
    return sorted(run_dir.glob("mlartifacts/**/checkpoint/*_G.pt"))


def test_checkpoints_hold_d_for_the_theory_checks(run_copy):
    ckpt = torch.load(_finalist_checkpoints(run_copy)[0], weights_only=True)
    assert set(ckpt) == {"G", "D", "config"}
    assert any(k.endswith("weight") for k in ckpt["D"])


def test_report_computes_logs_then_reads_back_the_checks(run_copy, checks_on, monkeypatch):
    data = collect(str(run_copy))
    gan = data.gans[0]
    assert gan.checks is not None
    names = [name for name, _ in gan.checks.figures]
    assert names == ["toy_ns_gradients.png", "toy_ns_dstar.png", "toy_ns_value.png"]
    assert all(png.startswith(b"\x89PNG") for _, png in gan.checks.figures)
    text = "\n".join(gan.checks.lines)
    assert "Proposition 1" in text and "-log 4" in text and "times smaller" in text
    # the gradient ratio says which G it was measured on (at init it is the same for every GAN
    # of one arch and seed)
    assert re.search(r"at mean D\(G\(z\)\) = \S+ \((the trained G, a fresh D after \d+ steps alone"
                     r"|G at its initialisation, a fresh D after \d+ steps alone"
                     r"|the run's own G and D at the end of training)\) the minimax", text), text
    logged = sorted(run_copy.glob("mlartifacts/**/checks/checks.json"))
    assert len(logged) == 1  # the best finalist's run only
    meta = json.loads(logged[0].read_text())
    assert meta["version"] == checks.VERSION and meta["figures"] == names

    def fail(*args, **kwargs):
        raise AssertionError("the checks were computed again instead of read from the run")

    monkeypatch.setattr(checks, "compute", fail)
    again = collect(str(run_copy))
    assert again.gans[0].checks.lines == gan.checks.lines
    assert again.gans[0].checks.figures == gan.checks.figures
    markdown, figures = render(again)
    assert "## Checked against the papers" in markdown and "#### Theory checks" in markdown
    assert markdown.index("## Checked against the papers") < markdown.index("## Figures")
    for name in names:
        assert f"(figures/{name})" in markdown and figures[name] == dict(gan.checks.figures)[name]


def test_checks_off_leaves_the_report_as_it_was(run_copy, monkeypatch):
    monkeypatch.setenv(checks.ENV, "off")
    data = collect(str(run_copy))
    assert data.gans[0].checks is None
    assert "Checked against the papers" not in render(data)[0]
    assert not list(run_copy.glob("mlartifacts/**/checks/checks.json"))


def test_checks_json_of_another_version_is_computed_again(tmp_path):
    record = checks.ChecksRecord(("line",), (("a.png", b"\x89PNG..."),))
    meta = checks.to_files(record, tmp_path) / "checks.json"
    assert checks.from_files(meta) == record
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "version": checks.VERSION + 1}))
    assert checks.from_files(meta) is None
    (tmp_path / "a.png").unlink()
    assert checks.from_files(meta) is None


def test_theory_command_on_a_checkpoint_and_on_a_run(run_copy, checks_on, monkeypatch, capsys,
                                                      tmp_path):
    ckpt = _finalist_checkpoints(run_copy)[0]
    out = tmp_path / "theory"
    code, stdout, _ = cli_main(monkeypatch, capsys, "theory", str(ckpt), "--out", str(out),
                               "--budget", str(BUDGET_S))
    assert code == 0, stdout
    stem = ckpt.name.removesuffix(".pt")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checks.md", f"{stem}_dstar.png", f"{stem}_gradients.png"])
    assert "Proposition 1" in (out / "checks.md").read_text()
    code, stdout, _ = cli_main(monkeypatch, capsys, "theory", str(run_copy), "--out", str(out / "run"))
    assert code == 0 and "## toy_ns" in stdout
    assert (out / "run" / "toy_ns_dstar.png").exists()


def test_theory_command_bad_target_is_one_line(monkeypatch, capsys, tmp_path):
    code, _, stderr = cli_main(monkeypatch, capsys, "theory", str(tmp_path / "nope.pt"))
    assert code == 2
    assert stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope.pt'}: no such checkpoint, suite file or run directory"]


def test_data_copying_is_refused_as_an_objective(monkeypatch, capsys, tmp_path):
    """Near 0 is its target, not an end of the scale: a search on it would reward copying or
    underfitting, whichever its direction said."""
    suite = (tmp_path / "s.yaml")
    suite.write_text((SMOKE_SUITE.read_text()).replace("objective: fid_points", "objective: data_copying"))
    code, _, stderr = cli_main(monkeypatch, capsys, "validate", str(suite), "--no-estimate")
    assert code == 2
    assert "metrics.objective: data_copying is a diagnostic (near 0 is the target" in stderr
