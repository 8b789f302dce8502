"""One Lucic et al. 2018 NS GAN trial on one device, timed, scored with the suite's objective.

    python3 benchmark/scripts/lucic_trial.py --out gpu_out/lucic.json          # on a GPU
    python3 benchmark/scripts/lucic_trial.py --out /tmp/l.json --set device=cpu \
        --set budget.epochs=null --set budget.iterations=20 ...                 # tiny, on a CPU

The protocol is suites/lucic2018_mnist.yaml's (its `ns_gan`: InfoGAN nets, NS loss, batch 64,
20 epochs of the first 50,000 training digits = 15,625 D steps, Inception FID of 10,000 samples
against the 10,000 test digits), through the runner's own pieces (`trial_config`, `train_data`,
`suite_evaluator`), without MLflow or Optuna. One setting instead of a search: lr 2e-4, beta1
0.5, k 1 (inside Lucic's narrow phase: lr 10^U[-4,-3], beta1 0.5, k 1). Evaluated every
`--eval-every` G steps (3906: every 5 epochs, Lucic's checkpoint cadence) and at the end.

The JSON (written after every evaluation, so a run cut short still says how far it got):
setting, device, speed tags, status, iterations, D steps, train seconds (evaluations excluded),
seconds per iteration, and each evaluation's step, value and seconds; best and final value.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SUITE = Path(__file__).resolve().parents[2] / "suites" / "lucic2018_mnist.yaml"
SETTING = {"lr_g": 2e-4, "beta1": 0.5, "k": 1}  # the middle of Lucic's narrow phase, roughly


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--gan", default="ns_gan", help="a GAN of the suite (ns_gan)")
    ap.add_argument("--size", default=None, help="arch size of that GAN (tiny: CPU dry runs)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="suite override, as `gan-bench run --set` (e.g. device=cuda)")
    ap.add_argument("--eval-every", type=int, default=3906,
                    help="G steps between evaluations (3906: 5 epochs at k 1; 0: the end only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from gan_bench.cache import atomic_write_json
    from gan_bench.config import load_suite
    from gan_bench.plan import EVAL_SEED, suite_evaluator, train_data, trial_config
    from gan_bench.train import Callback, Trainer
    from gan_bench.train.trainer import resolve_device

    args = parse_args(argv)
    overrides = [f"budget.eval_every={args.eval_every}", "budget.packed_trials=1", *args.overrides]
    suite = load_suite(str(args.suite), overrides)
    index = [g.name for g in suite.resolved_gans()].index(args.gan)
    if args.size:
        size = f"gans[{index}].arch_options.size={args.size}"
        suite = load_suite(str(args.suite), [*overrides, size])
    gan = suite.resolved_gans()[index]
    device = resolve_device(suite.device)
    cfg = trial_config(suite, gan, dict(SETTING), seed=args.seed, device=str(device))
    data = train_data(suite)
    evaluator = suite_evaluator(suite, device)
    objective, n_fake = suite.metrics.objective, suite.metrics.n_fake_search
    out: dict[str, Any] = {
        "suite": suite.name, "gan": gan.name, "spec": gan.spec.to_dict(), "setting": SETTING,
        "train": cfg.resolved(len(data)), "n_train": len(data), "objective": objective,
        "n_fake": n_fake, "n_real": suite.metrics.n_real, "device": str(device),
        "evals": [], "status": "running"}
    if device.type == "cuda":
        import torch

        out["device"] = f"cuda ({torch.cuda.get_device_name(device)})"

    class Score(Callback):
        def on_eval(self, trainer: Any, step: int) -> dict[str, float]:
            start = time.perf_counter()
            records = evaluator.evaluate(trainer.generate(n_fake, seed=EVAL_SEED), [objective])
            rec = records[evaluator.primary(objective)]
            out["evals"].append({"step": step, "value": rec.value,
                                 "seconds": time.perf_counter() - start,
                                 "protocol": rec.protocol})
            _progress(out, trainer, start_time)
            atomic_write_json(args.out, out)
            return {"objective": rec.value}

    trainer = Trainer(gan.spec, cfg, data, [Score()])
    out["speed"] = trainer.speed.as_tags()
    start_time = time.perf_counter()
    result = trainer.fit()
    out["status"] = result.status
    _progress(out, trainer, start_time)
    values = [e["value"] for e in out["evals"]]
    out.update(best=min(values) if values else None, final=values[-1] if values else None)
    atomic_write_json(args.out, out)
    print(json.dumps({k: out[k] for k in ("status", "iterations", "train_seconds",
                                          "seconds_per_iteration", "best", "final")}))
    return out


def _progress(out: dict[str, Any], trainer: Any, start: float) -> None:
    """Iterations so far and the training seconds (wall time minus the evaluations)."""
    wall = time.perf_counter() - start
    train_s = wall - sum(e["seconds"] for e in out["evals"])
    out.update(iterations=trainer.step, total_iterations=trainer.total_iterations,
               d_steps=trainer.d_steps, wall_seconds=wall, train_seconds=train_s,
               seconds_per_iteration=train_s / max(trainer.step, 1))


if __name__ == "__main__":
    main()
