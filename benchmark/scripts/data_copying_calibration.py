"""Calibrate the data-copying test C_T (Meehan et al. 2020; gan_bench/metrics/data_copying.py) on
MNIST: known "generators" made of real digits, scored through the Evaluator with the default
protocol, for the reading guide in docs/metrics.md.

    .venv/bin/python benchmark/scripts/data_copying_calibration.py [--n-real 5000] [--device cpu]
    .venv/bin/python benchmark/scripts/data_copying_calibration.py --json out/data_copying.json

P_n is a seeded random half of the test split (n_real = 5,000, the Evaluator's subset rule:
numpy RandomState(seed).choice, sorted); the rungs are n_real "generated" digits each:
  train digits         random training digits (seed 0): pure copying, the most negative C_T
  half train/test      half of those, half held-out test digits: partial copying
  test, other half     the test digits not in P_n: the null hypothesis, C_T ~ 0
  noise sigma 0.1/0.3  those with Gaussian pixel noise (std on the [0, 1] scale), clipped
  blur 3x3             those through a 3x3 box filter: underfitting, C_T > 0
and, with a reference set of only the first 10,000 training digits (n_train=10000), the same
random training digits (most of them outside it): why the default reference is the whole split.
Columns: C_T; cells kept of k; the shares of fakes and of test digits in the kept cells; the
smallest and largest per-cell Z; the reference size; seconds. The first row's seconds include the train split's features (60,000 digits, cached on disk
afterwards) and the k-means fit (memoised in the process); the others are one evaluation each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan_bench.cache import atomic_write_json
from gan_bench.data import load_dataset
from gan_bench.metrics.evaluator import Evaluator


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """uint8 digits + Gaussian noise of std sigma on the [0, 1] scale, clipped and rounded."""
    g = torch.Generator().manual_seed(seed)
    y = x.float() / 255 + sigma * torch.randn(x.shape, generator=g)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8)


def blurred(x: torch.Tensor) -> torch.Tensor:
    """uint8 digits through a 3x3 box filter (edges: the mean of the pixels inside)."""
    y = F.avg_pool2d(x.float(), 3, stride=1, padding=1, count_include_pad=False)
    return y.round().to(torch.uint8)


def rungs(n_real: int, seed: int) -> dict[str, torch.Tensor]:
    """The "generated" sets, n_real digits each (uint8 (n_real, 1, 28, 28))."""
    train, test = load_dataset("mnist", "train").data, load_dataset("mnist", "test").data
    # the Evaluator's real subset (evaluator.py `_real`): the rest of the test split is held out
    real_idx = np.random.RandomState(seed).choice(len(test), n_real, replace=False)
    other = test[torch.from_numpy(np.setdiff1d(np.arange(len(test)), real_idx))][:n_real]
    copies = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n_real]]
    half = n_real // 2
    return {"train digits": copies, "half train/test": torch.cat([copies[:half], other[:n_real - half]]),
            "test, other half": other, "noise sigma 0.1": noisy(other, 0.1),
            "noise sigma 0.3": noisy(other, 0.3), "blur 3x3": blurred(other)}


def row(label: str, ev: Evaluator, fake: torch.Tensor) -> dict:
    start = time.perf_counter()
    rec = ev.evaluate(fake)["data_copying"]
    seconds = time.perf_counter() - start
    return {"rung": label, "C_T": rec.value, "extra": rec.extra, "seconds": round(seconds, 2),
            "protocol": rec.protocol}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-real", type=int, default=5000, help="test digits as P_n (the rest: a rung)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    if not 2 <= args.n_real <= 5000:
        raise SystemExit("--n-real must be in [2, 5000]: the other half of the test split is a rung")
    total = time.perf_counter()
    ev = Evaluator("mnist", metrics=["data_copying"], n_real=args.n_real, device=args.device,
                   seed=args.seed)
    sets = rungs(args.n_real, args.seed)
    rows = [row(label, ev, fake) for label, fake in sets.items()]
    small = Evaluator("mnist", metrics=["data_copying"], n_real=args.n_real, device=args.device,
                      seed=args.seed, params={"data_copying": {"n_train": 10_000}})
    rows.append(row("train digits, reference = first 10k only", small, sets["train digits"]))
    print(f"{'rung':44s} {'C_T':>8s} {'cells':>6s} {'fakes in':>9s} {'tests in':>9s} {'Z min':>7s} "
          f"{'Z max':>7s} {'n_train':>7s} {'s':>6s}")
    for r in rows:
        e = r["extra"]
        print(f"{r['rung']:44s} {r['C_T']:8.2f} {int(e['cells_used']):3d}/{int(e['k']):<2d} "
              f"{e['fake_share_used']:9.3f} {e['test_share_used']:9.3f} {e['z_min']:7.2f} {e['z_max']:7.2f} "
              f"{int(e['n_train']):7d} {r['seconds']:6.1f}")
    for r in (rows[0], rows[-1]):  # the rest share rows[0]'s protocol
        print(f"protocol ({r['rung']}): {json.dumps(r['protocol'], sort_keys=True)}")
    print(f"total {time.perf_counter() - total:.1f} s on {ev.device} "
          f"({torch.get_num_threads()} torch threads)")
    if args.json is not None:
        atomic_write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
