"""Project a suite's GPU-hours (suites/mnist.yaml by default) from measurements on this device.

    python3 benchmark/scripts/project_gpu_hours.py --out gpu_out/projection.json \
        --set device=cuda --fid-json gpu_out/fid.json                      # on a GPU
    python3 benchmark/scripts/project_gpu_hours.py --out /tmp/p.json --size tiny --pack 2 \
        --iterations 3 --set device=cpu --set metrics.n_fake_search=200 ...   # tiny, on a CPU

What is measured here, on the suite's device:

1. `estimate.estimate_suite`: each GAN's seconds per G step alone (at the search's midpoint
   setting, as `gan-bench run` estimates it), seconds per generated sample, and the objective's
   seconds per sample;
2. one pack of `--pack` (32) trials of `--pack-gan` (dcgan) at the same midpoint setting, for
   one epoch (`--epochs 1`, or `--iterations N`), after a 2-iteration warm-up pack: its seconds
   per G step per trial, and the speed-up over the same GAN alone.

The projection (`project`, pure arithmetic): per GAN, training = G steps (search trials +
finalist runs, estimate.count_suite) x seconds per G step, divided by the measured speed-up
when the GAN can be packed (train/packed.py `pack_problems`; the others run alone);
evaluation = objective evaluations x n_fake_search x (generation + objective seconds per
sample) + finalist runs x n_fake x (that + the seconds per sample of every extra extractor of
the final metrics, Inception on MNIST). Inception's seconds per sample come from `--fid-json`
(measure_references.py's rows: the fp32 row scored with the real features cached) when given,
else estimate.ROUGH_IMG_PER_S. An upper bound: pruning (the median pruner stops trials early)
is not modelled. The JSON lists these assumptions next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SUITE = Path(__file__).resolve().parents[2] / "suites" / "mnist.yaml"
TARGET_GPU_HOURS = 1.0  # issue 15: suites/mnist.yaml projected <= 1 GPU-hour


@dataclass(frozen=True)
class GanProjection:
    name: str
    packable: bool
    steps: int  # G steps of all runs (search trials + finalist runs)
    step_s: float  # seconds per G step alone
    speedup: float  # applied to training (1 when not packed)
    train_s: float
    eval_s: float

    @property
    def seconds(self) -> float:
        return self.train_s + self.eval_s


def project(counts: Sequence[Any], step_s: dict[str, float], sample_s: dict[str, float],
            packable: dict[str, bool], speedup: float, objective_s: float, extra_s: float,
            n_fake_search: int, n_fake: int) -> list[GanProjection]:
    """One GanProjection per `counts` entry (estimate.GanCount): see the module docstring.
    step_s, sample_s: per GAN, seconds per G step alone and per generated sample; objective_s
    and extra_s: seconds per sample of the objective and of the final metrics' extra extractors."""
    out = []
    for c in counts:
        per_sample = sample_s[c.name] + objective_s
        evals = (c.evals * n_fake_search * per_sample
                 + c.final_evals * n_fake * (per_sample + extra_s))
        gain = speedup if packable[c.name] else 1.0
        out.append(GanProjection(c.name, packable[c.name], c.steps, step_s[c.name], gain,
                                 c.steps * step_s[c.name] / gain, evals))
    return out


def inception_s_per_sample(path: Path | None) -> tuple[float | None, str]:
    """Seconds per image of Inception FID with cached reals (the fastest fp32 row of a
    measure_references.py output), and where it came from."""
    if path is None or not path.is_file():
        return None, "not measured"
    rows = [r for r in json.loads(path.read_text())
            if r.get("metric") == "fid_inception"
            and (r.get("protocol") or {}).get("precision") == "fp32-strict"]
    if not rows:
        return None, f"no fp32 fid_inception row in {path.name}"
    best = min(rows, key=lambda r: r["seconds"] / r["protocol"]["n_fake"])
    return best["seconds"] / best["protocol"]["n_fake"], f"{path.name}: {best['label']}"


def measure_pack(suite: Any, gan: Any, device: Any, pack: int, epochs: float,
                 iterations: int | None) -> dict[str, Any]:
    """Seconds of one pack of `pack` trials of `gan` at its midpoint setting (seeds 0..P-1)."""
    import torch

    from gan_bench.estimate import timing_config
    from gan_bench.plan import train_data
    from gan_bench.train import PackedTrainer

    data = train_data(suite)
    base = timing_config(suite, gan, device)
    length = {"iterations": iterations, "epochs": None} if iterations else {
        "iterations": None, "epochs": epochs}
    cfgs = [base.with_(seed=i, **length) for i in range(pack)]
    PackedTrainer(gan.spec, [c.with_(iterations=2, epochs=None) for c in cfgs], data).fit()
    trainer = PackedTrainer(gan.spec, cfgs, data)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    results = trainer.fit()
    sync()
    seconds = time.perf_counter() - start
    steps = results[0].iterations
    return {"gan": gan.name, "trials": pack, "k": base.k, "batch_size": base.batch_size,
            "iterations": steps, "epochs": None if iterations else epochs, "seconds": seconds,
            "statuses": sorted({r.status for r in results}),
            "per_trial_step_s": seconds / (steps * pack)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="suite override, as `gan-bench run --set` (e.g. device=cuda)")
    ap.add_argument("--size", default=None, help="arch size for every GAN (tiny: CPU dry runs)")
    ap.add_argument("--pack", type=int, default=32, help="trials in the measured pack (32)")
    ap.add_argument("--pack-gan", default="dcgan", help="the suite's GAN that is packed (dcgan)")
    ap.add_argument("--epochs", type=float, default=1.0, help="length of the pack (1 epoch)")
    ap.add_argument("--iterations", type=int, default=None, help="instead of --epochs")
    ap.add_argument("--fid-json", type=Path, default=None,
                    help="measure_references.py rows with fp32 fid_inception (Inception speed)")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from gan_bench.cache import atomic_write_json
    from gan_bench.config import load_suite
    from gan_bench.estimate import ROUGH_IMG_PER_S, GanTiming, estimate_suite, timing_config
    from gan_bench.train.packed import pack_problems
    from gan_bench.train.trainer import resolve_device

    args = parse_args(argv)
    suite = load_suite(str(args.suite), args.overrides)
    if args.size:
        sizes = [f"gans[{i}].arch_options.size={args.size}" for i in range(len(suite.gans))]
        suite = load_suite(str(args.suite), [*args.overrides, *sizes])
    device = resolve_device(suite.device)
    gans = {g.name: g for g in suite.resolved_gans()}
    est = estimate_suite(suite)
    untimed = {n: t for n, t in est.timings.items() if not isinstance(t, GanTiming)}
    if untimed or not isinstance(est.eval_sample_s, float):
        raise SystemExit(f"not timed: {untimed or est.eval_sample_s}")
    pack = measure_pack(suite, gans[args.pack_gan], device, args.pack, args.epochs,
                        args.iterations)
    solo = est.timings[args.pack_gan].step_s
    pack["solo_step_s"], pack["speedup"] = solo, solo / pack["per_trial_step_s"]
    incep, source = inception_s_per_sample(args.fid_json)
    if incep is None:
        incep, source = 1.0 / ROUGH_IMG_PER_S[device.type], f"rough guess ({source})"
    extra = len(est.untimed_extractors()) * incep
    packs = suite.budget.packed_trials != 1  # the runner packs only when asked to
    packable = {n: packs and not pack_problems(g.spec, [timing_config(suite, g, device)])
                for n, g in gans.items()}
    rows = project(est.counts, {n: t.step_s for n, t in est.timings.items()},
                   {n: t.sample_s for n, t in est.timings.items()}, packable, pack["speedup"],
                   est.eval_sample_s, extra, suite.metrics.n_fake_search, suite.metrics.n_fake)
    total = sum(r.seconds for r in rows)
    out = {"suite": suite.name, "device": est.device, "pack": pack,
           "objective": suite.metrics.objective, "objective_s_per_sample": est.eval_sample_s,
           "extra_extractors": est.untimed_extractors(), "inception_s_per_sample": incep,
           "inception_source": source,
           "gans": [{**asdict(r), "seconds": r.seconds} for r in rows],
           "total_seconds": total, "gpu_hours": total / 3600, "target_gpu_hours": TARGET_GPU_HOURS,
           "assumptions": [
               "upper bound: pruning is not modelled (the median pruner stops trials early)",
               f"k and batch at the search's midpoint (estimate.count_suite); a pack of "
               f"{args.pack} {args.pack_gan} trials at that setting measured the speed-up, "
               "applied to every GAN that can be packed; the others run alone",
               "finalist runs cost as search trials; every packed trial runs at the measured "
               "pack's per-trial speed (a GAN's last, smaller pack too); evaluations are not "
               "packed",
               f"Inception seconds per image: {source}"]}
    atomic_write_json(args.out, out)
    print(json.dumps({"gpu_hours": out["gpu_hours"], "speedup": pack["speedup"],
                      "device": est.device}))
    return out


if __name__ == "__main__":
    main()
