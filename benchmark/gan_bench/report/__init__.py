"""Reports: run records in, a markdown leaderboard and figures out (STYLE.md practice 12).

    collect(source)  -> ReportData        reads Optuna + MLflow (report/collect.py)
    render(data)     -> (markdown, specs)  pure, golden-file tested (report/render.py)
    write_report(source, out_dir, fmt)     both, then writes leaderboard.md + figures/*.png

`gan-bench report SUITE_OR_OUTPUT_DIR` calls `write_report`; reports/README.md explains the
columns.
"""

from __future__ import annotations

from pathlib import Path

from gan_bench.cache import atomic_write_bytes
from gan_bench.report.collect import collect, resolve_source
from gan_bench.report.data import FinalistRecord, GanRecord, ReportData, TrialRecord
from gan_bench.report.figures import FigureSpec, draw
from gan_bench.report.render import render
from gan_bench.stats import TESTS

__all__ = ["write_report", "write_files", "collect", "render", "resolve_source", "draw",
           "ReportData", "GanRecord", "TrialRecord", "FinalistRecord", "FigureSpec", "FORMATS", "TESTS"]

FORMATS = ("md", "html")


def _write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    path.chmod(0o644)  # the temporary file's 0600 would hide a published report from others


def write_files(data: ReportData, out_dir: str | Path, fmt: str = "md") -> Path:
    """Render `data` into out_dir: leaderboard.md (or .html) and figures/*.png.

    Every file is written atomically; PNGs in figures/ that this report no longer makes are
    removed, so the folder matches the markdown. Returns the leaderboard's path.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    markdown, figures = render(data)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        _write(fig_dir / name, fig if isinstance(fig, bytes) else draw(fig))
    for stale in fig_dir.glob("*.png"):
        if stale.name not in figures:
            stale.unlink()
    if fmt == "html":
        from gan_bench.report.html import to_html

        path = out / "leaderboard.html"
        _write(path, to_html(markdown, f"Leaderboard: {data.suite}").encode())
    else:
        path = out / "leaderboard.md"
        _write(path, markdown.encode())
    return path


def write_report(source: str | Path, out_dir: str | Path | None = None, fmt: str = "md",
                 test: str = "mannwhitney") -> Path:
    """Collect the runs of `source` (suite YAML or output dir) and write the report.

    out_dir defaults to reports/<suite> under the current directory; test is the significance
    test against the best GAN ("mannwhitney" or "welch"). Returns the path of leaderboard.md
    (leaderboard.html with fmt="html").
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    data = collect(source, test=test)
    return write_files(data, out_dir or Path("reports") / data.suite, fmt)
