"""The `gan-bench` command line. Thin: parse, call the library, print.

Bad input raises UserInputError somewhere below; `main` turns it into one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
import typer
from rich.console import Console
from rich.table import Table

from gan_bench import interrupts
from gan_bench.errors import GanBenchError, UserInputError
from gan_bench.stores import redact
from gan_bench.timing import LEDGER

if TYPE_CHECKING:
    from gan_bench.config.schema import Suite
    from gan_bench.config.space import Searched
    from gan_bench.metrics.records import MetricRecord
    from gan_bench.registry import Registry
    from gan_bench.run.runner import SuiteOutcome

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="gan-bench: benchmark GANs (architecture x loss x penalty) with searched lr ratio and k.")
data_app = typer.Typer(no_args_is_help=True, help="Fetch, convert and inspect datasets.")
app.add_typer(data_app, name="data", help="Fetch, convert and inspect datasets (prepare, info).")
evaluator_app = typer.Typer(no_args_is_help=True, help="Train the project's own evaluator networks.")
app.add_typer(evaluator_app, name="evaluator", help="Train the project's evaluator networks (the MNIST classifier).")

def _vendored(name: str) -> tuple[type[Exception], ...]:
    """click's exception class and typer's vendored copy of it (typer >= 0.20 ships its own
    click, whose exceptions are not click's: both must be caught)."""
    import importlib

    found = [getattr(click.exceptions, name)]
    try:
        found.append(getattr(importlib.import_module("typer._click.exceptions"), name))
    except (ImportError, AttributeError):
        pass
    return tuple(found)


CLICK_ERRORS = _vendored("ClickException")
ABORTS = _vendored("Abort")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _registries() -> dict[str, Registry[Any]]:
    from gan_bench.registry import REGISTRIES

    return REGISTRIES


@app.command("list")
def list_cmd(
    axis: str | None = typer.Argument(None, help="datasets, architectures, losses, penalties, presets, metrics or feature_extractors; all when omitted."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output for scripts."),
) -> None:
    """List the registries' catalogue (what a suite may name)."""
    regs = _registries()
    if axis is not None and axis not in regs:
        raise UserInputError(f"unknown registry {axis!r} (known: {', '.join(regs)})")
    chosen = {axis: regs[axis]} if axis else regs
    if as_json:
        print(json.dumps({name: reg.catalogue() for name, reg in chosen.items()}, indent=2))
        return
    for name, reg in chosen.items():
        table = Table(title=f"{name} ({len(reg)})", title_justify="left", show_lines=False)
        table.add_column("name", style="bold")
        table.add_column("summary")
        for item in reg.catalogue():
            source = item.get("source", "built-in")
            where = "" if source == "built-in" else f" (from {source})"
            table.add_row(item["name"], item["summary"] + where)
        if not len(reg):
            table.add_row("-", "(none registered yet)")
        out.print(table)


def _print_info(info: dict[str, Any]) -> None:
    out.print(f"[bold]{info['dataset']}/{info['split']}[/bold]: n={info['n']} shape={tuple(info['shape'])} "
              f"dtype={info['dtype']} range=[{info['min']:g}, {info['max']:g}] classes={info['n_classes']}")
    if "label_counts" in info:
        out.print("  label counts: " + " ".join(f"{k}:{v}" for k, v in info["label_counts"].items()))
    out.print(f"  sha256(data)={info['sha256']}")
    out.print(f"  sha256(labels)={info['labels_sha256']}")
    out.print(f"  source: {info['source']}")


def _dataset_infos(name: str, data_dir: str | None) -> list[dict[str, Any]]:
    from gan_bench.registry import DATASETS

    _registries()
    return [ds.info() for ds in DATASETS.get(name).prepare(data_dir=data_dir)]


@data_app.command("prepare")
def data_prepare(
    name: str = typer.Argument(..., help="Dataset name, e.g. mnist (see `gan-bench list datasets`)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder with the raw files (e.g. MNIST IDX files); else $GAN_BENCH_DATA."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Fetch / convert a dataset into the cache and print what was stored."""
    infos = _dataset_infos(name, data_dir)
    if as_json:
        print(json.dumps(infos, indent=2))
    else:
        for info in infos:
            _print_info(info)


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="Dataset name, e.g. mnist."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder with the raw files; else $GAN_BENCH_DATA."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print shapes, dtype, label counts, sha256 of the image array and the source of each split."""
    data_prepare(name, data_dir, as_json)


@evaluator_app.command("train")
def evaluator_train(
    name: str = typer.Argument(..., help="Evaluator to train: mnist."),
    out: str = typer.Option("mnist_classifier.pt", "--out", help="Checkpoint path (the shipped one lives in gan_bench/assets/)."),
    seed: int = typer.Option(0, "--seed", help="Seed; 0 reproduces the shipped checkpoint on CPU."),
    epochs: int = typer.Option(5, "--epochs", help="Epochs (5 gave 99.48% test accuracy)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Train the MNIST classifier used for domain FID / IS and mode counting (seeded)."""
    if name != "mnist":
        raise UserInputError(f"unknown evaluator {name!r} (known: mnist)")
    from gan_bench.metrics.mnist_classifier import train_mnist_classifier

    record = train_mnist_classifier(out, seed=seed, epochs=epochs, device=device,
                                    command=" ".join(sys.argv))
    print(json.dumps(record, indent=2, default=str))


def _param_text(param: Searched) -> str:
    from gan_bench.config import Range

    if isinstance(param, Range):
        return f"{param.low:g}..{param.high:g}" + (" log" if param.log else "")
    return "{" + ", ".join(f"{v:g}" for v in param.choices) + "}"


def _print_suite(suite: Suite) -> None:
    b, ds = suite.budget, suite.dataset
    length = f"{b.iterations} iterations" if b.iterations else f"{b.epochs:g} epochs"
    subset = f", first {ds.subset}" if ds.subset else ""
    print(f"suite {suite.name}: dataset {ds.name} ({ds.train_split}{subset}; metrics on {ds.eval_split})")
    for gan in suite.resolved_gans():
        spec = gan.spec
        searched = ", ".join(f"{n} {_param_text(p)}" for n, p in gan.search.items()) or "nothing"
        fixed = ", ".join(f"{k}={v}" for k, v in gan.trial_train().items() if k not in gan.search)
        print(f"  {gan.name}: {spec.arch} / {spec.loss} / {spec.penalty}; searches {searched}"
              + (f"; fixed {fixed}" if fixed else ""))
    packed = "" if b.packed_trials == 1 else f", packed trials {b.packed_trials}"
    print(f"budget: {b.trials} trials per GAN, {length}, eval every {b.eval_every or 'end'}{packed}; "
          f"sampler {suite.sampler.name}, pruner {suite.pruner.name}")
    m = suite.metrics
    record = f" ({m.objective_record})" if m.objective_record else ""
    curves = f", curves {', '.join(m.curves)}" if m.curves else ""
    print(f"metrics: objective {m.objective}{record}, final {', '.join(m.final) or '-'}{curves}; "
          f"finalists top {suite.finalists.top} x {suite.finalists.seeds} seeds; device {suite.device}")
    print(f"output: {suite.resolved_output_dir()}")


@app.command("validate")
def validate_cmd(
    suite: str = typer.Argument(..., help="Suite YAML file, e.g. suites/smoke.yaml."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field, e.g. --set budget.trials=2 --set gans[0].train.k=3."),
    as_json: bool = typer.Option(False, "--json", help="Print the resolved suite (defaults filled in) as JSON."),
    estimate: bool = typer.Option(True, "--estimate/--no-estimate", help="Print the suite's cost: G steps and evaluations, and the time from a few timed iterations of each GAN on the suite's device (default on; under a minute for suites/mnist.yaml on a CPU). --no-estimate: counts only, nothing trains."),
) -> None:
    """Check a suite file without running it: every problem on its own line, with its YAML path;
    then what it will cost (see --estimate)."""
    from gan_bench.config import SuiteError, load_suite

    try:
        loaded = load_suite(suite, overrides)
    except SuiteError as exc:
        for line in exc.problems:
            err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None  # main() runs click standalone_mode=False: typer.Exit(2) would exit 0
    if as_json:
        print(json.dumps(loaded.to_dict(), indent=2))
    else:
        _print_suite(loaded)
        _print_estimate(loaded, estimate)


def _print_estimate(suite: Suite, timed: bool) -> None:
    from gan_bench.estimate import estimate_suite, format_estimate

    try:
        print("\n".join(format_estimate(estimate_suite(suite, timed=timed))))
    except GanBenchError as exc:  # e.g. MNIST not fetched yet: the suite itself is valid
        print(f"cost not estimated: {exc}")


def _print_scores(records: list[MetricRecord]) -> None:
    """Values table, then each metric's protocol on one line (versions once at the end)."""
    table = Table(title="scores", title_justify="left")
    for col in ("metric", "value", "extras", "n_fake", "extractor"):
        table.add_column(col, style="bold" if col == "metric" else None)
    for rec in records:
        extras = " ".join(f"{k}={v:.4g}" for k, v in rec.extra.items())
        table.add_row(rec.metric, f"{rec.value:.6g}", extras, str(rec.protocol["n_fake"]),
                      str(rec.protocol["extractor"]))
    out.print(table)
    out.print("[bold]protocol[/bold]")
    seen = set()
    for rec in records:
        p = rec.protocol
        if (p["metric"], p["extractor"]) not in seen:  # fid@a and fid@b: two protocols
            seen.add((p["metric"], p["extractor"]))
            out.print(f"  {p['metric']}: extractor={p['extractor']} sha256={p['extractor_sha256']} "
                      f"resize={p['resize']!r} real={p['real_split']} n_real={p['n_real']} "
                      f"n_fake={p['n_fake']} dtype={p['dtype']} seed={p['seed']} "
                      f"params={json.dumps(p['params'], sort_keys=True)}", markup=False, highlight=False)
    if records:
        out.print("  versions: " + " ".join(f"{k}={v}" for k, v in records[0].protocol["versions"].items()),
                  markup=False, highlight=False)


@app.command("score")
def score_cmd(
    dataset: str = typer.Option(..., "--dataset", help="Dataset the samples imitate: mnist, stacked_mnist, ring8, grid25, fashion_mnist, cifar10."),
    fake: str = typer.Option(..., "--fake", help="Samples: .npz with one uint8 array (N, H, W) or (N, C, H, W) (key x, images or arr_0), a folder of PNGs, or for ring8/grid25 an .npz with float (N, 2) points."),
    real: str = typer.Option("test", "--real", help="Real split to compare with: test (Lucic et al. 2018) or train."),
    metrics: str | None = typer.Option(None, "--metrics", help="Comma-separated NAME or NAME@EXTRACTOR, e.g. fid_mnist,is_mnist,kid@inception_tf. Default: mnist fid_mnist,is_mnist,kid,prdc,modes; ring8/grid25 fid_points,modes; stacked_mnist fid_inception,kid,prdc,modes."),
    n_real: int | None = typer.Option(None, "--n-real", help="Real samples, a seeded subset of the split (e.g. 10000); default the whole split."),
    param: list[str] | None = typer.Option(None, "--param", help="Metric setting METRIC.KEY=VALUE, repeatable, e.g. kid.subset_size=100 or modes.n_samples=10000."),
    seed: int = typer.Option(0, "--seed", help="Seed of the real subset and the KID subsets."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (Inception runs ~6 img/s on a 2-core CPU)."),
    batch_size: int = typer.Option(200, "--batch-size", help="Images per extractor batch (e.g. 200; 500 on a GPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of records (metric, value, extra, protocol)."),
    ladder: bool = typer.Option(False, "--ladder", help="Also print the calibration ladder (real digits with known damage) on the same protocol (mnist; ~20 s at 2,000 samples, cached)."),
) -> None:
    """Score generated samples against a real split (FID, IS, KID, PRDC, modes) with their protocol."""
    from gan_bench.metrics.evaluator import Evaluator, default_metrics, parse_param_overrides
    from gan_bench.metrics.samples_io import load_samples

    requests = ([m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None
                else default_metrics(dataset))
    evaluator = Evaluator(dataset, real_split=real, metrics=requests, n_real=n_real, device=device,
                          seed=seed, batch_size=batch_size, params=parse_param_overrides(param or []))
    samples = load_samples(fake)
    records = list(evaluator.evaluate(samples).values())
    rungs = None
    if ladder:
        from gan_bench.ladder import ladder_rows, ladder_table, protocol_text

        rungs = ladder_rows(dataset, n_fake=len(samples), n_real=n_real, real_split=real, seed=seed,
                            device=device)
    if as_json:
        recs = [rec.to_dict() for rec in records]
        print(json.dumps(recs if rungs is None else {"records": recs, "ladder": rungs}, indent=2))
        return
    _print_scores(records)
    if rungs is not None:
        out.print("\ncalibration ladder (same protocol):", markup=False)
        for line in [protocol_text(rungs), "", *ladder_table(rungs)]:
            out.print(line, markup=False, highlight=False)


def _print_outcome(outcome: SuiteOutcome) -> None:
    from gan_bench.progress import format_params
    from gan_bench.tracking import ui_command

    table = Table(title=f"suite {outcome.suite}: best {outcome.objective} per GAN "
                        f"({'higher' if outcome.direction == 'maximize' else 'lower'} is better)",
                  title_justify="left")
    for col in ("GAN", "best search", "finalists (mean)", "complete", "pruned", "failed", "best params"):
        table.add_column(col)
    for g in outcome.gans:
        vals = [r["metrics"].get(f"final/{outcome.objective}", r["metrics"].get("final/objective"))
                for r in g.finalists]
        vals = [v for v in vals if v is not None]
        mean = f"{sum(vals) / len(vals):.4g} (n={len(vals)})" if vals else "-"
        best = "-" if g.best_value is None else f"{g.best_value:.4g}"
        table.add_row(g.name, best, mean, str(g.complete), str(g.pruned), str(g.failed),
                      format_params(g.best_params))
    wide = out if out.is_terminal else Console(width=160)  # logs default to 80 columns
    wide.print(table)
    if outcome.new_trials == 0 and outcome.new_finalists == 0:
        out.print("nothing new to run: every study already has its budgeted trials and finalists "
                  "(raise budget.trials or finalists to add more)")
    else:
        out.print(f"ran {outcome.new_trials} new trial(s) and {outcome.new_finalists} finalist run(s)")
    if outcome.stopped:
        out.print(f"stopped early: {outcome.stopped}; run the same command again to continue")
    out.print(f"Optuna storage: {redact(outcome.storage_url)}")
    out.print(f"MLflow: {ui_command(outcome.tracking_uri, outcome.output_dir)}")


def _worker_value(value: str) -> str:
    """--worker: an index or "auto" (a usage error otherwise, like typer's own)."""
    if value != "auto" and not (value.isdigit() and value.isascii()):
        raise typer.BadParameter(f"{value!r} is not an index 0, 1, 2, ... or auto")
    return value


@app.command("run")
def run_cmd(
    suite: str = typer.Argument(..., help="Suite file, e.g. suites/quickstart.yaml."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a field: --set budget.trials=2 --set gans[0].train.k=3"),
    worker: str = typer.Option("0", "--worker", envvar="GAN_BENCH_WORKER", callback=_worker_value, help="Index of this worker when several processes share one study (0, 1, ...; a cluster array index via GAN_BENCH_WORKER): it offsets the sampler seed. `auto`: take the next index no other worker of this suite has (workers started alike, e.g. docker compose --scale worker=N)."),
    plain: bool = typer.Option(False, "--plain", help="One line per event instead of live bars (automatic when stdout is not a terminal)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write reports/<suite>/leaderboard.md at the end (default on)."),
    estimate: bool = typer.Option(True, "--estimate/--no-estimate", help="First time a few iterations of each GAN and print the suite's cost (default on; under a minute on a CPU for suites/mnist.yaml). --no-estimate prints the counts only; the ETA then starts after the first finished trial."),
) -> None:
    """Run every GAN's search and finalists; rerunning the same command continues where it stopped."""
    from gan_bench.config import load_suite
    from gan_bench.preflight import check_run
    from gan_bench.progress import make_progress
    from gan_bench.run import Runner

    LEDGER.reset()  # where the time goes, printed last
    spec = load_suite(suite, set_ or [])
    check_run(spec)  # stores reachable, folders writable: before anything is written
    progress = make_progress(True if plain else None)
    with progress:
        command = " ".join(["gan-bench", *sys.argv[1:]])
        outcome = Runner(spec, worker="auto" if worker == "auto" else int(worker),
                         progress=progress, estimate=estimate,
                         command=command).run()
    _print_outcome(outcome)
    if report:
        with LEDGER.phase("report"):
            _run_report(outcome)
    out.print(LEDGER.line())


def _run_report(outcome: SuiteOutcome) -> None:
    """`gan-bench run`'s report: written to reports/<suite>/, published as the summary run."""
    from gan_bench.report import collect, write_files
    from gan_bench.report.publish import publish_summary

    try:
        interrupts.check()
        data = collect(outcome.output_dir)
        interrupts.check()
        path = write_files(data, Path("reports") / data.suite)
        interrupts.check()
        out.print(f"report: {path} (regenerate: gan-bench report {outcome.output_dir})")
        publish_summary(outcome.tracking_uri, data, path)
    except UserInputError:  # a damaged store: the same one line as `gan-bench report`, exit 2
        raise
    except Exception as exc:  # the runs are recorded; a report problem must not hide that
        first = (str(exc).splitlines() or [""])[0][:300]
        err.print(f"error: report not written ({type(exc).__name__}: {first}); the runs are "
                  f"intact: gan-bench report {outcome.output_dir}", markup=False,
                  highlight=False, soft_wrap=True)
        sys.exit(1)


@app.command("report")
def report_cmd(
    source: str = typer.Argument(..., help="Suite YAML (e.g. suites/smoke.yaml) or a run output dir (e.g. runs/smoke)."),
    out_dir: str | None = typer.Option(None, "--out", help="Folder for leaderboard.md and figures/; default reports/<suite>."),
    fmt: str = typer.Option("md", "--format", help="md (renders on GitHub) or html (one standalone page)."),
    test: str = typer.Option("mannwhitney", "--test", help="Test against the best GAN: mannwhitney (no normality assumed) or welch (t test, for 5+ seeds)."),
) -> None:
    """Write the leaderboard (markdown + figures) of a suite's tracked runs; never retrains."""
    from gan_bench.preflight import check_report
    from gan_bench.report import FORMATS, TESTS, write_report

    if fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if test not in TESTS:
        raise UserInputError(f"unknown test {test!r} (known: {', '.join(TESTS)})")
    check_report(source, out_dir)
    print(f"report: {write_report(source, out_dir, fmt, test)}")


@app.command("schema")
def schema_cmd(
    out: str | None = typer.Option(None, "--out", help="Write the JSON Schema here (e.g. suites/suite.schema.json) instead of printing it."),
) -> None:
    """JSON Schema of suite files, for editors: suites start with `# yaml-language-server: $schema=suite.schema.json`."""
    from gan_bench.config.json_schema import schema_text

    text = schema_text()
    if out is None:
        print(text, end="")
        return
    Path(out).write_text(text)
    print(f"written: {out}")


@app.command("theory")
def theory_cmd(
    target: str = typer.Argument(..., help="A finalist checkpoint (runs/<suite>/mlartifacts/.../checkpoint/<run>_G.pt), a suite YAML or a run output dir (each GAN's best finalist)."),
    out_dir: str = typer.Option("theory", "--out", help="Folder for the figures (PNG) and checks.md."),
    seed: int = typer.Option(2024, "--seed", help="Seed of z and of the D trained alone (2024: the evaluation seed)."),
    budget: float = typer.Option(60.0, "--budget", min=1.0, help="Seconds of D training per checkpoint (D* and the gradient sweeps; ~1 min on a CPU)."),
) -> None:
    """Goodfellow 2014's claims on trained GANs: D vs the optimal D* (2-D mixtures), V vs -log 4, G's gradient under the minimax and the non-saturating loss."""
    from gan_bench.report import checks

    path = Path(target)
    if path.is_file() and path.suffix == ".pt":
        results = [(path.name, checks.checkpoint_checks(path, seed, budget))]
    elif path.exists():  # each GAN's best finalist, as the report checks it (and logs it)
        from gan_bench.report import collect

        os.environ[checks.ENV] = "on"
        results = [(g.name, g.checks) for g in collect(target).gans if g.checks is not None]
    else:
        raise UserInputError(f"{target}: no such checkpoint, suite file or run directory")
    if not results:
        raise UserInputError(f"{target}: no finalist checkpoint to check (run the suite first)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for name, record in results:
        lines += [f"## {name}", "", *(line.replace("figures/", "") for line in record.lines), ""]
        for fig, png in record.figures:
            (out / fig).write_bytes(png)
        took = ", ".join(f"{k} {v:g} s" for k, v in record.seconds)
        print(f"{name}: checked{f' ({took})' if took else ''}")
    (out / "checks.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {out / 'checks.md'} and {sum(len(r.figures) for _, r in results)} figure(s) in {out}")


@app.command("ui")
def ui_cmd(
    source: str = typer.Argument(..., help="Suite YAML (e.g. suites/quickstart.yaml) or a run output dir (e.g. runs/quickstart), also a moved or unpacked copy."),
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (127.0.0.1: this machine only)."),
    screenshots: str | None = typer.Option(None, "--screenshots", help="Save the UI screenshots of docs/ui.md into this folder (headless chromium, Playwright from the dev extra), then stop."),
) -> None:
    """Start the MLflow UI on a suite's store (job execution off) and print the URL of its experiment."""
    from gan_bench.report.collect import resolve_source
    from gan_bench.ui import serve, tour

    then = None
    if screenshots:
        suite, _ = resolve_source(source)

        def then(url: str, uri: str) -> None:
            for path in tour(url, uri, suite, Path(screenshots)):
                print(f"screenshot: {path}", flush=True)

    raise typer.Exit(serve(source, host=host, port=port, then=then,
                           announce=lambda line: print(line, flush=True)))


@app.command("perf")
def perf_cmd(
    device: str = typer.Option("auto", "--device", help="cuda or cpu (auto: cuda when present)."),
    arch: str | None = typer.Option(None, "--arch", help="Architecture(s), comma-separated, e.g. infogan,dcgan,mlp (loss non_saturating). Default: infogan on cuda, dcgan on a CPU."),
    batch: int = typer.Option(64, "--batch", help="Batch size (64: the issue's reference setting)."),
    iters: int | None = typer.Option(None, "--iters", help="Timed iterations per row (default 200 on cuda, 20 on a CPU)."),
    warmup: int | None = typer.Option(None, "--warmup", help="Untimed iterations first (>= 4 so CUDA-graph capture is excluded; default 20 on cuda, 3 on a CPU)."),
    pack: str | None = typer.Option(None, "--pack", help="Pack sizes, comma-separated, each a row besides the solo one (e.g. 4,16,64; 0 none). Default 8 on cuda, 4 on a CPU."),
    dataset: str = typer.Option("mnist", "--dataset", help="Training data, e.g. mnist or ring8."),
    loss: str = typer.Option("non_saturating", "--loss", help="Loss of the trainer rows (the reference row exists for non_saturating only), e.g. wasserstein."),
    penalty: str = typer.Option("none", "--penalty", help="Penalty of the trainer rows, e.g. gradient_penalty (WGAN-GP packs)."),
    size: str | None = typer.Option(None, "--size", help="full (paper nets), small (CPU quickstart nets) or tiny (CPU tests only). Default full on cuda, small on a CPU."),
    precision: str = typer.Option("auto", "--precision", help="Trainer rows: auto (tf32 on cuda), fp32, tf32 or bf16."),
    fid_metric: str | None = typer.Option(None, "--fid-metric", help="Default fid_inception on cuda, fid_mnist on cpu; e.g. fid_inception with --fid-samples 500 on a CPU."),
    fid_samples: int | None = typer.Option(None, "--fid-samples", help="Generated samples for the FID timing (default 10000 on cuda, 1000 on a CPU; 0 skips it)."),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: torch's default; 1 is often fastest for small nets on a busy CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON (a list when several --arch)."),
) -> None:
    """Training img/s of the reference loop, our trainer on one trial and on packs, and FID
    seconds; progress on stderr, a line per row. The CPU defaults take about a minute."""
    import torch

    from gan_bench.devices import resolve_device
    from gan_bench.perf import format_report, perf_defaults, run_perf

    d = perf_defaults(resolve_device(device))
    try:
        packs = [int(p) for p in pack.split(",")] if pack is not None else d["packs"]
    except ValueError:
        raise UserInputError(f"--pack {pack}: expected pack sizes such as 4,16,64") from None
    iters, warmup = d["iters"] if iters is None else iters, d["warmup"] if warmup is None else warmup
    fid_samples = d["fid_samples"] if fid_samples is None else fid_samples
    if min(batch, iters) < 1 or min(warmup, fid_samples, threads, *packs) < 0:
        raise UserInputError("--batch and --iters must be >= 1; --warmup, --pack, --fid-samples "
                             "and --threads >= 0")
    if threads:
        torch.set_num_threads(threads)
    reports = []
    for name in (arch or d["arch"]).split(","):
        reports.append(run_perf(
            device=device, arch=name.strip(), batch=batch, iters=iters, warmup=warmup, packs=packs,
            dataset=dataset, size=size or d["size"], precision=precision, fid_metric=fid_metric,
            fid_samples=fid_samples, loss=loss, penalty=penalty,
            progress=lambda line: err.print(f"perf: {line}", markup=False, highlight=False)))
    if as_json:
        dicts = [r.to_dict() for r in reports]
        print(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=2))
    else:
        out.print("\n\n".join(format_report(r) for r in reports), markup=False, highlight=False)


@app.command("baselines")
def baselines_cmd(
    dataset: str = typer.Option("mnist", "--dataset", help="Dataset (mnist: every preset that takes 28x28 images)."),
    seconds: float = typer.Option(120.0, "--seconds", help="Training wall time per preset (120 on a 2-core CPU; evaluation not counted)."),
    presets: str | None = typer.Option(None, "--presets", help="Comma-separated presets, e.g. dcgan,ns_gan (default: all MNIST presets)."),
    out_dir: str = typer.Option("reports/baselines", "--out", help="Report folder (README.md, grids/, results.json)."),
    n: int = typer.Option(10000, "--n", help="Generated samples scored at the end (10000 vs the 10,000 test digits)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    render: bool = typer.Option(False, "--render", help="Only re-render README.md from the folder's results.json."),
) -> None:
    """Train each preset at its paper's defaults for a stated budget; write reports/baselines/."""
    import datetime
    import time

    from gan_bench import baselines as bl
    from gan_bench.ladder import ladder_markdown
    from gan_bench.tracking import git_sha

    start, sha = time.perf_counter(), git_sha()  # the sha of the code that runs, taken first
    names = [p.strip() for p in presets.split(",") if p.strip()] if presets else bl.mnist_presets()
    bl.check_request(names, seconds, dataset, n)
    ladder = ladder_markdown(dataset, n_fake=n, n_real=None, real_split="test", device=device)
    if render:
        out.print(f"report: {bl.rerender(out_dir, ladder)}")
        return
    pairs = bl.run_baselines(names, seconds, dataset=dataset, n=n, device=device,
                             progress=lambda line: out.print(line, markup=False))
    command = "gan-bench baselines " + " ".join(sys.argv[2:])
    header = bl.header_lines(command=command.strip(), wall_seconds=time.perf_counter() - start,
                             device=device, sha=sha,
                             date=datetime.date.today().isoformat(), n=n)
    path = bl.write_baselines(pairs, out_dir, seconds=seconds, header=header, ladder=ladder, n=n)
    out.print(f"report: {path}")


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with interrupts.installed():
        _main()


def _main() -> None:
    try:
        rc = app(standalone_mode=False)  # returns the code of typer.Exit / SystemExit
        interrupts.check()  # a Ctrl-C that something swallowed still ends in 130
        if rc == 130:  # typer turns Ctrl-C into a return value of 130
            raise KeyboardInterrupt
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except UserInputError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # a suite error: one per problem
            err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except GanBenchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    # mypy rejects a starred tuple of exception classes here (it is one at runtime)
    except (KeyboardInterrupt, *ABORTS):  # type: ignore[misc]  # click turns Ctrl-C into Abort
        _interrupted()
    except typer.Exit as exc:
        if interrupts.received():
            _interrupted()
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        if isinstance(exc, CLICK_ERRORS):  # one line naming the problem, as for every bad input
            # click's ClickException or typer's vendored copy of it: the same API
            words = [a for a in sys.argv[1:2] if not a.startswith("-")]
            if "No such command" in cast(click.ClickException, exc).format_message():
                words = []
            command = " ".join(["gan-bench", *words])
            err.print(f"error: {cast(click.ClickException, exc).format_message()} "
                      f"(see `{command} --help`)", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        raise


def _interrupted() -> None:
    err.print("interrupted: what was recorded is intact (a trial in flight is marked and will "
              "be retried); run the same command again to continue", markup=False)
    sys.exit(130)


if __name__ == "__main__":
    main()
