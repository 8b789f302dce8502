"""Measure the reference rows every MNIST leaderboard is read against and write them to
gan_bench/assets/references.json (floors and ceilings: real vs real, uniform noise vs real).

    .venv/bin/python benchmark/scripts/measure_references.py [--inception-n 2000] [--device cpu]
    .venv/bin/python benchmark/scripts/measure_references.py --inception-only --inception-n 10000
    # strict fp32 and TF32 timings on a GPU, kept out of the references file:
    python3 benchmark/scripts/measure_references.py --inception-only --inception-n 10000 \
        --device cuda --precision fp32 tf32 --batch-size 500 --out gpu_out/fid.json

The first Inception row's seconds include the real (test) features, computed once and cached;
the second row's are the FID of 10,000 fakes with the real features cached.

Real "fake" sets: 10,000 training digits (a seeded random subset, seed 0) and 10,000 uniform
noise images (uint8 U{0..255}, seed 1), scored against the whole test split (10,000) with the
domain metrics. Inception FID (--inception-n N > 0) uses N of each against N test images; on a
2-core CPU Inception runs ~4-6 img/s, so N = 10,000 is for a GPU. Each row keeps the full
protocol of its record (precision included: evaluation is strict fp32 unless --precision tf32;
each row also names the precision asked for) and the seconds it took on this machine.
--metric fid_mnist gives the same rows with the MNIST classifier (the CPU dry run of
benchmark/scripts/gpu_run.sh).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gan_bench.cache import atomic_write_json
from gan_bench.data import load_dataset
from gan_bench.metrics.evaluator import Evaluator

OUT = Path(__file__).resolve().parents[1] / "gan_bench" / "assets" / "references.json"
DOMAIN = ["fid_mnist", "is_mnist", "kid", "prdc", "modes"]


def fake_sets(n: int) -> dict[str, torch.Tensor]:
    train = load_dataset("mnist", "train").data
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
    noise = torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(1),
                          dtype=torch.uint8)
    k = f"{n // 1000}k" if n >= 1000 else str(n)
    return {f"real train {k} (seeded subset)": train[pick],
            f"uniform noise {k}": noise,
            f"real test {k} (the real split itself)": load_dataset("mnist", "test").data[:n]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rows_for(label: str, fake: torch.Tensor, ev: Evaluator, metrics: list[str]) -> list[dict]:
    """One row per record of `metrics` on `fake`; "seconds" is the whole evaluation's."""
    _sync(ev.device)
    start = time.perf_counter()
    records = ev.evaluate(fake, metrics)
    _sync(ev.device)
    seconds = time.perf_counter() - start
    machine = f"{platform.machine()} {torch.get_num_threads()} threads, {ev_device(ev)}"
    return [{"dataset": "mnist", "label": label, "metric": key, "value": rec.value,
             "extra": rec.extra, "protocol": rec.protocol, "seconds": seconds, "machine": machine,
             **({"precision_requested": ev.precision} if ev.precision != "fp32" else {})}
            for key, rec in records.items()]


def ev_device(ev: Evaluator) -> str:
    if ev.device.type == "cuda":
        return f"{ev.device} ({torch.cuda.get_device_name(ev.device)})"
    return str(ev.device)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="fakes per domain row (10000)")
    ap.add_argument("--inception-n", type=int, default=0,
                    help="fakes and reals per Inception row (10000 on a GPU; 0 skips them)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--inception-only", action="store_true",
                    help="keep the --out file's other rows, replace its rows of --metric")
    ap.add_argument("--metric", default="fid_inception",
                    help="metric of the --inception-n rows (fid_inception; fid_mnist for a CPU "
                         "dry run)")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "tf32"],
                    help="evaluation float32 math, one or both: fp32 (strict, the protocol's) "
                         "and tf32 (cuda only, to time it; write it to another --out)")
    ap.add_argument("--batch-size", type=int, default=200,
                    help="images per extractor batch (200; 500 on a GPU)")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="JSON file of rows (default: gan_bench/assets/references.json)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    if args.inception_only:
        if args.out.is_file():
            rows = [r for r in json.loads(args.out.read_text()) if r["metric"] != args.metric]
    else:
        for precision in args.precision:
            domain = Evaluator("mnist", real_split="test", metrics=DOMAIN, n_real=None,
                               device=args.device, batch_size=args.batch_size,
                               precision=precision)
            for label, fake in fake_sets(args.n).items():
                rows += rows_for(label, fake, domain, DOMAIN)
    if args.inception_n:
        fakes = list(fake_sets(args.inception_n).items())[:2]
        for precision in args.precision:  # each computes its own real features first
            incep = Evaluator("mnist", real_split="test", metrics=[args.metric],
                              n_real=args.inception_n, device=args.device,
                              batch_size=args.batch_size, precision=precision)
            for label, fake in fakes:
                rows += rows_for(label, fake, incep, [args.metric])
    atomic_write_json(args.out, rows)
    for r in rows:
        print(f"{r['label']:40s} {r['metric']:16s} {r['protocol']['precision'] or '-':12s} "
              f"{r['value']:12.4f}  ({r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
