"""The `gan-bench` command line. Thin: parse, call the library, print.

Bad input raises UserInputError somewhere below; `main` turns it into one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gan_bench.errors import GanBenchError, UserInputError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="gan-bench: benchmark GANs (architecture x loss x penalty) with searched lr ratio and k.")
data_app = typer.Typer(no_args_is_help=True, help="Fetch, convert and inspect datasets.")
app.add_typer(data_app, name="data", help="Fetch, convert and inspect datasets (prepare, info).")
evaluator_app = typer.Typer(no_args_is_help=True, help="Train the project's own evaluator networks.")
app.add_typer(evaluator_app, name="evaluator", help="Train the project's evaluator networks (the MNIST classifier).")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _registries():  # type: ignore[no-untyped-def]
    from gan_bench.catalogue import load_builtins
    from gan_bench.registry import REGISTRIES

    load_builtins()
    return REGISTRIES


@app.command("list")
def list_cmd(
    axis: Optional[str] = typer.Argument(None, help="datasets, architectures, losses, penalties, presets, metrics or feature_extractors; all when omitted."),
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
            table.add_row(item["name"], item["summary"])
        if not len(reg):
            table.add_row("-", "(none registered yet)")
        out.print(table)


def _print_info(info: dict) -> None:  # type: ignore[type-arg]
    out.print(f"[bold]{info['dataset']}/{info['split']}[/bold]: n={info['n']} shape={tuple(info['shape'])} "
              f"dtype={info['dtype']} range=[{info['min']:g}, {info['max']:g}] classes={info['n_classes']}")
    if "label_counts" in info:
        out.print("  label counts: " + " ".join(f"{k}:{v}" for k, v in info["label_counts"].items()))
    out.print(f"  sha256(data)={info['sha256']}")
    out.print(f"  sha256(labels)={info['labels_sha256']}")
    out.print(f"  source: {info['source']}")


def _dataset_infos(name: str, data_dir: Optional[str]) -> list[dict]:  # type: ignore[type-arg]
    from gan_bench.registry import DATASETS

    _registries()
    return [ds.info() for ds in DATASETS.get(name).prepare(data_dir=data_dir)]


@data_app.command("prepare")
def data_prepare(
    name: str = typer.Argument(..., help="Dataset name, e.g. mnist (see `gan-bench list datasets`)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with the raw files (e.g. MNIST IDX files); else $GAN_BENCH_DATA."),
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
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with the raw files; else $GAN_BENCH_DATA."),
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
    from gan_bench.metrics.evaluator import train_mnist_classifier

    record = train_mnist_classifier(out, seed=seed, epochs=epochs, device=device,
                                    command=" ".join(sys.argv))
    print(json.dumps(record, indent=2, default=str))


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except UserInputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except GanBenchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
