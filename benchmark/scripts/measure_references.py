"""Measure the reference rows every MNIST leaderboard is read against and write them to
gan_bench/assets/references.json (floors and ceilings: real vs real, uniform noise vs real).

    .venv/bin/python benchmark/scripts/measure_references.py [--inception-n 2000] [--device cpu]
    .venv/bin/python benchmark/scripts/measure_references.py --inception-only --inception-n 10000

The first Inception row's seconds include the real (test) features, computed once and cached.

Real "fake" sets: 10,000 training digits (a seeded random subset, seed 0) and 10,000 uniform
noise images (uint8 U{0..255}, seed 1), scored against the whole test split (10,000) with the
domain metrics. Inception FID (--inception-n N > 0) uses N of each against N test images; on a
2-core CPU Inception runs ~4-6 img/s, so N = 10,000 is for a GPU. Each row keeps the full
protocol of its record and the seconds it took on this machine.
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
from gan_bench.metrics.evaluate import Evaluator

OUT = Path(__file__).resolve().parents[1] / "gan_bench" / "assets" / "references.json"
DOMAIN = ["fid_mnist", "is_mnist", "kid", "prdc", "modes"]


def fake_sets(n: int) -> dict[str, torch.Tensor]:
    train = load_dataset("mnist", "train").data
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
    noise = torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(1),
                          dtype=torch.uint8)
    return {f"real train {n // 1000}k (seeded subset)": train[pick],
            f"uniform noise {n // 1000}k": noise,
            f"real test {n // 1000}k (the real split itself)": load_dataset("mnist", "test").data[:n]}


def rows_for(label: str, fake: torch.Tensor, ev: Evaluator, metrics: list[str]) -> list[dict]:
    start = time.perf_counter()
    records = ev.evaluate(fake, metrics)
    seconds = time.perf_counter() - start
    machine = f"{platform.machine()} {torch.get_num_threads()} threads, {ev_device(ev)}"
    return [{"dataset": "mnist", "label": label, "metric": key, "value": rec.value,
             "extra": rec.extra, "protocol": rec.protocol, "seconds": seconds, "machine": machine}
            for key, rec in records.items()]


def ev_device(ev: Evaluator) -> str:
    return str(ev.device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--inception-n", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--inception-only", action="store_true",
                    help="keep the file's domain rows, replace its fid_inception rows")
    args = ap.parse_args()
    rows = []
    if args.inception_only:
        rows = [r for r in json.loads(OUT.read_text()) if r["metric"] != "fid_inception"]
    else:
        domain = Evaluator("mnist", real_split="test", metrics=DOMAIN, n_real=None, device=args.device)
        for label, fake in fake_sets(args.n).items():
            rows += rows_for(label, fake, domain, DOMAIN)
    if args.inception_n:
        incep = Evaluator("mnist", real_split="test", metrics=["fid_inception"],
                          n_real=args.inception_n, device=args.device)
        for label, fake in list(fake_sets(args.inception_n).items())[:2]:
            rows += rows_for(label, fake, incep, ["fid_inception"])
    atomic_write_json(OUT, rows)
    for r in rows:
        print(f"{r['label']:40s} {r['metric']:16s} {r['value']:12.4f}  ({r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
