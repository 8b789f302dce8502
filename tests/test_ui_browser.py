"""The MLflow UI in a real browser (headless Debian chromium driven by Playwright for Python):
what a user sees when comparing GAN variants with `gan-bench ui` on the smoke suite's store.

Skips with a stated reason where chromium or Playwright is missing (a laptop without them);
`.ci/run` installs chromium and the dev extra installs Playwright, so CI runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_bench.ui_tour import chromium_path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
ITERATIONS = 100

pytestmark = [pytest.mark.slow]
if chromium_path() is None:
    pytestmark.append(pytest.mark.skip(reason="no chromium here (apt-get install -y chromium; "
                                              ".ci/run does it as root)"))
try:
    import playwright.sync_api  # noqa: F401
except ImportError:  # pragma: no cover - the dev extra installs it
    pytestmark.append(pytest.mark.skip(reason="Playwright for Python is not installed (pip "
                                              "install -e '.[dev]')"))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The smoke suite, small, with search trial 1 of each GAN pruned at its first evaluation
    (the pruner's decision is forced; everything else is the real runner)."""
    from gan_bench.config import load_suite
    from gan_bench.run import Runner
    from gan_bench.study import GanStudy

    out = tmp_path_factory.mktemp("ui") / "smoke"
    suite = load_suite(SMOKE, [f"output_dir={out}", f"budget.iterations={ITERATIONS}",
                               f"budget.eval_every={ITERATIONS // 2}"])
    original = GanStudy.report
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GanStudy, "report",
                   lambda self, ticket, value: ticket.number == 1 or original(self, ticket, value))
        Runner(suite, command="gan-bench run suites/smoke.yaml (test)").run()
    return suite, out


def _serve(out: Path):
    """`gan-bench ui OUT --port 0`: the process and the experiment URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "gan_bench.cli", "ui", str(out), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        match = re.search(r"MLflow UI: (http://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise AssertionError("gan-bench ui printed no URL:\n" + "".join(lines[-30:]))


@pytest.fixture(scope="module")
def ui(store):
    suite, out = store
    proc, url = _serve(out)
    try:
        yield suite, out, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def page():
    from gan_bench.ui_tour import browser_page

    with browser_page() as p:
        yield p


def _mlflow(out: Path, suite):
    from gan_bench.tracking import Tracker, default_tracking_uri

    return Tracker(default_tracking_uri(out), suite.name, read_only=True)


def test_the_link_opens_model_training_with_gan_summaries(ui, page):
    from gan_bench import ui_tour

    suite, out, url = ui
    assert "workflowType=machine_learning" in url
    ui_tour.open_runs(page, url)
    ui_tour.close_assistant(page)
    # Model training mode: the runs table, not the GenAI traces overview
    assert "/runs" in page.url and "workflowType=machine_learning" in page.url
    assert page.get_by_text("Detect Issues").count() == 0
    assert page.get_by_text("Model training", exact=True).count() == 1
    # the collapsed table compares GANs: each parent row shows its finalists' mean and CI
    tracker = _mlflow(out, suite)
    for gan in suite.gans:
        (parent,) = tracker.find_runs(f"tags.stage = 'study' and tags.gan = '{gan.name}'")
        shown = ui_tour.parent_row_values(page, gan.name, ["final/fid_points",
                                                          "final_ci/fid_points_low",
                                                          "eval/fid_points"])
        assert float(shown["final/fid_points"]) == pytest.approx(
            parent["metrics"]["final/fid_points"], rel=1e-3)
        assert float(shown["final_ci/fid_points_low"]) <= float(shown["final/fid_points"])
        assert float(shown["eval/fid_points"]) == pytest.approx(
            parent["metrics"]["eval/fid_points"], rel=1e-3)


def test_children_nest_under_their_gan_and_the_pruned_trial_says_so(ui, page):
    from gan_bench import ui_tour

    suite, out, url = ui
    ui_tour.open_runs(page, url)
    ui_tour.close_assistant(page)
    page.set_viewport_size({"width": 3600, "height": 1000})  # every column rendered (ag-grid
    # renders only the columns in view; a user scrolls right to the state column)
    gan = suite.gans[0].name
    before = ui_tour.run_names(page)
    assert gan in before and not any(n.startswith("t0 ") for n in before)  # collapsed
    ui_tour.expand(page, gan)
    names = ui_tour.run_names(page)
    children = names[names.index(gan) + 1:]
    trials = [n for n in children if re.fullmatch(r"t\d+ k=\d+ r=[\d.e+-]+( pruned@\d+)?", n)]
    finals = [n for n in children if re.fullmatch(r"final s\d+ <- t\d+", n)]
    assert len(trials) == suite.budget.trials and len(finals) == suite.finalists.seeds
    (pruned,) = [n for n in trials if "pruned@" in n]
    assert pruned.startswith("t1 ") and pruned.endswith(f"pruned@{ITERATIONS // 2}")
    assert ui_tour.cell_text(page, pruned, "tags.`state`") == "pruned"
    assert ui_tour.cell_text(page, trials[0], "tags.`state`") == "complete"


def test_the_image_grid_shows_samples_with_a_step_slider(ui, page):
    from gan_bench import ui_tour

    suite, out, url = ui
    # collapsed: one grid per GAN (its best finalist's last grid, on the parent)
    images = ui_tour.samples_at_link(page, url)
    assert len(images) == len(suite.gans) and all(i["loaded"] for i in images), images
    assert {i["step"] for i in images} == {ITERATIONS}
    slider = ui_tour.step_slider(page)
    assert slider.get_attribute("aria-valuemax") == str(ITERATIONS)
    # expanded: every run of the GAN, and the slider goes back to the first evaluation
    ui_tour.table_view(page)
    ui_tour.expand(page, suite.gans[0].name)
    ui_tour.chart_view(page)
    ui_tour.scroll_to_samples(page)
    images = ui_tour.samples_images(page)
    assert len(images) > len(suite.gans) and all(i["loaded"] for i in images), images
    ui_tour.set_samples_step(page, 0.0)
    assert slider.get_attribute("aria-valuenow") == str(ITERATIONS // 2)
    images = ui_tour.samples_images(page)
    assert images and all(i["loaded"] and i["step"] == ITERATIONS // 2 for i in images), images


def test_a_moved_copy_of_the_store_still_shows_its_images(store, tmp_path, page):
    from gan_bench import ui_tour

    suite, out = store
    moved = tmp_path / "elsewhere" / "smoke-copy"
    shutil.copytree(out, moved)
    hidden = out.with_name(out.name + "-hidden")
    out.rename(hidden)  # the original folder is gone: nothing may be read from it
    try:
        proc, url = _serve(moved)
        try:
            images = ui_tour.samples_at_link(page, url)
            assert len(images) == len(suite.gans) and all(i["loaded"] for i in images), images
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        hidden.rename(out)
