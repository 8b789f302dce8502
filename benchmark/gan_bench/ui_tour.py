"""A headless-browser tour of a suite in the MLflow UI: the clicks a user makes to compare
variants, as functions. `gan-bench ui SOURCE --screenshots DIR` saves the screenshots of docs/ui.md
with them, and tests/test_ui_browser.py asserts what they show.

Drives Debian's chromium (`/usr/bin/chromium`, or GAN_BENCH_CHROMIUM) through Playwright for
Python; never a downloaded browser (Playwright's own download needs the internet). Tested with
MLflow 3.17.2's UI: the selectors below are that version's (ag-grid cells keyed by `col-id`, the
runs-view radio buttons TABLE / CHART, the assistant panel's "Close" button).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect, Locator, Page

__all__ = ["chromium_path", "browser_page", "open_runs", "close_assistant", "parent_row_values",
           "expand", "run_names", "chart_view", "table_view", "scroll_to_samples",
           "samples_at_link", "step_slider", "cell_text", "samples_images", "set_samples_step",
           "open_run", "screenshot_tour", "CHROMIUM_ARGS"]

# What a closed network and a container need (the same flags the workplace's probe used).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
WAIT_MS = 30_000


def chromium_path() -> str | None:
    """The chromium executable to drive, or None when there is none here."""
    wanted = os.environ.get("GAN_BENCH_CHROMIUM")
    for candidate in (wanted, "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextlib.contextmanager
def browser_page(width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """A fresh headless chromium page (empty profile: what a new user sees)."""
    from playwright.sync_api import sync_playwright

    from gan_bench.errors import UserInputError

    exe = chromium_path()
    if exe is None:
        raise UserInputError("no chromium here: install Debian's (apt-get install -y chromium) "
                             "or set GAN_BENCH_CHROMIUM to a chromium executable")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def open_runs(page: Page, url: str) -> None:
    """The experiment link `gan-bench ui` prints; waits for the runs table."""
    page.goto(url)
    page.wait_for_selector('[col-id="attributes.`Run Name`"]')
    page.wait_for_timeout(1000)


def close_assistant(page: Page) -> None:
    """MLflow 3 opens its assistant panel on a browser's first visit (and remembers it closed)."""
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()
        page.wait_for_timeout(300)


def _name_cell(page: Page, name: str) -> Locator:
    return page.locator('[role=gridcell][col-id="attributes.`Run Name`"]').filter(
        has=page.get_by_text(name, exact=True)).first


def _row_index(page: Page, name: str) -> str:
    row = _name_cell(page, name).locator("xpath=ancestor::*[@role='row'][1]")
    return row.get_attribute("row-index") or ""


def parent_row_values(page: Page, name: str, columns: list[str]) -> dict[str, str]:
    """Cell texts of run `name`'s row for metric columns, e.g. ["final/fid_points"] (ag-grid
    renders pinned and scrolling cells of one row in separate containers, joined by row-index)."""
    index = _row_index(page, name)
    out = {}
    for column in columns:
        cell = page.locator(f'[role=row][row-index="{index}"] '
                            f'[role=gridcell][col-id="metrics.`{column}`"]').first
        out[column] = cell.inner_text().strip()
    return out


def expand(page: Page, name: str) -> None:
    """Expand parent run `name` (the +/- button left of its name)."""
    _name_cell(page, name).locator("button").first.click()
    page.wait_for_timeout(1000)


def run_names(page: Page) -> list[str]:
    """Run names in table order (as displayed)."""
    cells = page.locator('[role=gridcell][col-id="attributes.`Run Name`"] a')
    return [cells.nth(i).inner_text().strip() for i in range(cells.count())]


def cell_text(page: Page, name: str, col_id: str) -> str:
    index = _row_index(page, name)
    return page.locator(f'[role=row][row-index="{index}"] [role=gridcell][col-id="{col_id}"]'
                        ).first.inner_text().strip()


def chart_view(page: Page) -> None:
    page.locator("label:has(input[value=CHART])").click()
    page.wait_for_timeout(2500)


def table_view(page: Page) -> None:
    page.locator("label:has(input[value=TABLE])").click()
    page.wait_for_selector('[col-id="attributes.`Run Name`"]')
    page.wait_for_timeout(1000)


def samples_images(page: Page) -> list[dict[str, Any]]:
    """The image grid's images: src, step (from the file name) and whether each loaded."""
    page.wait_for_timeout(1500)
    found = page.evaluate("""() => Array.from(document.images)
        .filter(i => i.src.includes('samples%2Bstep%2B'))
        .map(i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0}))""")
    for item in found:
        match = re.search(r"samples%2Bstep%2B(\d+)%2B", item["src"])
        item["step"] = int(match.group(1)) if match else None
    return found


def scroll_to_samples(page: Page) -> None:
    page.get_by_text("Samples", exact=True).first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)


def samples_at_link(page: Page, url: str) -> list[dict[str, Any]]:
    """Open the experiment link, switch to the charts and return the "Samples" grid's images
    (the parents collapsed: one grid per GAN)."""
    open_runs(page, url)
    close_assistant(page)
    chart_view(page)
    scroll_to_samples(page)
    return samples_images(page)


def step_slider(page: Page) -> Locator:
    return page.locator("[role=slider]").last


def set_samples_step(page: Page, fraction: float) -> None:
    """Drag the image grid's step slider (a Radix slider: the thumb's grandparent is the
    track) to `fraction` of the track: 0.0 the first evaluation, 1.0 the last."""
    thumb = step_slider(page)
    thumb.scroll_into_view_if_needed()
    page.mouse.wheel(0, 200)  # off the viewport's edge
    page.wait_for_timeout(500)
    # None only for an element that is not displayed; the thumb was just scrolled into view
    box = cast("FloatRect", thumb.bounding_box())
    track = cast("FloatRect", thumb.locator("xpath=../..").bounding_box())
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], y, steps=10)
    page.mouse.up()
    page.wait_for_timeout(1500)


def open_run(page: Page, base_url: str, experiment_id: str, run_id: str, tab: str | None = None) -> None:
    page.goto(f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"
              "?workflowType=machine_learning")
    page.wait_for_timeout(2500)
    close_assistant(page)
    if tab:
        page.get_by_role("tab", name=tab).first.click()
        page.wait_for_timeout(2500)


def screenshot_tour(url: str, out_dir: Path, parent: str, run_ids: dict[str, str]) -> list[Path]:
    """The screenshots of docs/ui.md, in the order a user clicks: the summary table, a GAN
    expanded, the compare charts, the samples grid, a trial's grouped metrics, a parent's
    overview. `run_ids`: {"trial": id, "parent": id} of runs to open; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base, _, rest = url.partition("/#/experiments/")
    experiment = rest.split("/")[0].split("?")[0]
    shots = []

    def shot(page: Page, name: str, full: bool = False) -> None:
        path = out_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full)
        shots.append(path)

    with browser_page() as page:
        open_runs(page, url)
        close_assistant(page)
        shot(page, "1_runs_summary")
        expand(page, parent)
        shot(page, "2_gan_expanded")
        chart_view(page)
        shot(page, "3_compare_charts")
        scroll_to_samples(page)
        page.wait_for_timeout(1000)
        shot(page, "4_samples_grid")
        open_run(page, base, experiment, run_ids["trial"], "Model metrics")
        shot(page, "5_trial_metrics")
        open_run(page, base, experiment, run_ids["parent"])
        shot(page, "6_parent_overview")
    return shots
