"""The Performance table of docs/gpu.md from the JSON that benchmark/scripts/gpu_run.sh leaves in $OUT.

    python3 benchmark/scripts/perf_table.py gpu_out > /tmp/table.md   # then paste it in docs/gpu.md

Reads env.json (GPU model, driver, versions, date), perf_<arch>_p<P>.json (`gan-bench perf
--json`), fid.json (measure_references.py rows), lucic.json, projection.json and summary.json;
a missing file becomes "not measured" with its step's status. Prints markdown on stdout: the
machine, training img/s with the ratio to the reference loop of the same run, Inception FID
seconds in strict fp32 and TF32, the Lucic NS GAN trial, the projected GPU-hours of
suites/mnist.yaml, each against issue 15's target, and the steps' status. Pure: `load` reads
the folder, `render` turns what it read into text.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

TARGETS = {"fast": 6.0, "packed": 15.0, "fid_s": 2.0, "gpu_hours": 1.0}  # issue 15
LUCIC_NS_GAN_FID = "6.8 +- 0.5"  # Lucic et al. 2018, Table 2, MNIST, NS GAN (best FID)
_PERF = re.compile(r"perf_(?P<arch>[a-z0-9_]+)_p(?P<pack>\d+)\.json$")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load(folder: str | Path) -> dict[str, Any]:
    """Everything gpu_run.sh wrote under `folder`, parsed (None where a file is missing)."""
    folder = Path(folder)
    perf = {}
    for path in sorted(folder.glob("perf_*_p*.json")):
        m = _PERF.search(path.name)
        if m:
            perf[(m["arch"], int(m["pack"]))] = _read(path)
    return {"env": _read(folder / "env.json"), "summary": _read(folder / "summary.json"),
            "perf": perf, "fid": _read(folder / "fid.json"), "lucic": _read(folder / "lucic.json"),
            "projection": _read(folder / "projection.json")}


def _num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _target(value: float | None, goal: float, higher: bool, unit: str = "") -> str:
    if value is None:
        return f"{'>=' if higher else '<='} {goal:g}{unit}: not measured"
    reached = value >= goal if higher else value <= goal
    return f"{'>=' if higher else '<='} {goal:g}{unit}: {'reached' if reached else 'not reached'}"


def _status(data: dict[str, Any], step: str) -> str:
    for s in (data.get("summary") or {}).get("steps", []):
        if s["name"] == step:
            return f"step {step}: {s['status']}" + (f", {s['note']}" if s.get("note") else "")
    return f"step {step}: did not run"


def header(data: dict[str, Any]) -> list[str]:
    env, summary = data.get("env") or {}, data.get("summary") or {}
    gpu = env.get("gpu") or "no GPU"
    mem = f" ({env['gpu_memory_mib']:,} MiB)" if env.get("gpu_memory_mib") else ""
    lines = [f"### Performance on {gpu} (measured)", ""]
    if (env.get("mode") or summary.get("mode")) == "dry":
        lines += ["**CPU dry run** of `benchmark/scripts/gpu_run.sh --dry-run`: tiny nets and "
                  "sample counts; these numbers say nothing about GPU speed.", ""]
    sha = (env.get("git_sha") or "")[:10] or "unknown"
    lines += [f"{gpu}{mem}, driver {env.get('driver') or '-'}; torch {env.get('torch', '-')}, "
              f"CUDA {env.get('cuda') or '-'}, cuDNN {env.get('cudnn') or '-'}, Python "
              f"{env.get('python', '-')}; {env.get('cpu_count', '?')} CPU cores. Measured "
              f"{env.get('date', '-')} by `benchmark/scripts/gpu_run.sh` (gan-bench {sha}; "
              f"{summary.get('seconds', 0):.0f} s in all).", ""]
    return lines


def training_rows(data: dict[str, Any]) -> list[str]:
    perf = {k: v for k, v in data["perf"].items() if v}
    if not perf:
        return ["Training: not measured (" + _status(data, "perf_infogan_p8") + ").", ""]
    first = next(iter(perf.values()))["setting"]
    lines = [f"Training img/s (real images through D per second; {first['dataset']}, "
             f"{first['loss']} loss, {first['size']} nets, batch {first['batch']}, "
             f"{first['iters']} timed iterations after {first['warmup']} warm-up). x reference: "
             "against the reference loop timed in the same `gan-bench perf` run; the reference "
             "and solo rows are the median of the runs (one per pack size).", "",
             "| arch | row | img/s | x reference | precision | target |",
             "| --- | --- | ---: | ---: | --- | --- |"]
    for arch in dict.fromkeys(a for a, _ in perf):
        runs = [(p, r) for (a, p), r in sorted(perf.items()) if a == arch]
        # "solo" is the one-trial Trainer row; JSON made before issue 24 calls it "fast"
        by_name = {n: [row for _, r in runs for row in r["rows"]
                       if row["name"] == n or (n == "solo" and row["name"] == "fast")]
                   for n in ("reference", "solo")}
        for name, label in (("reference", "reference loop"), ("solo", "trainer, one trial")):
            rows = by_name[name]
            if not rows:
                continue
            ips = statistics.median(r["img_per_s"] for r in rows)
            ratio = statistics.median(r["ratio"] for r in rows)
            goal = _target(ratio, TARGETS["fast"], True, "x") if name == "solo" else ""
            lines.append(f"| {arch} | {label} | {_num(ips)} | {ratio:.2f} | "
                         f"{rows[0]['precision']} | {goal} |")
        for pack, r in runs:
            for row in r["rows"]:
                if row["name"].startswith("packed"):
                    lines.append(f"| {arch} | packed x{pack} (aggregate) | "
                                 f"{_num(row['img_per_s'])} | {row['ratio']:.2f} | "
                                 f"{row['precision']} | "
                                 f"{_target(row['ratio'], TARGETS['packed'], True, 'x')} |")
    return lines + [""]


def fid_rows(data: dict[str, Any]) -> list[str]:
    rows = data.get("fid")
    if not rows:
        return ["FID: not measured (" + _status(data, "fid") + ").", ""]
    lines = ["FID of generated-like sets against the test split (measure_references.py): "
             "seconds of one evaluation with the real features cached, and of the first one, "
             "which computes them.", "",
             "| metric | n fake / real | precision | seconds (reals cached) | seconds (first) "
             "| target |", "| --- | --- | --- | ---: | ---: | --- |"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["metric"], r.get("precision_requested", "fp32")), []).append(r)
    for (metric, asked), group in groups.items():
        p = group[0]["protocol"]
        cached = min(r["seconds"] for r in group[1:]) if len(group) > 1 else None
        first = group[0]["seconds"]
        goal = (_target(cached, TARGETS["fid_s"], False, " s")
                if metric == "fid_inception" and p["n_fake"] >= 10000 and asked == "fp32" else "")
        lines.append(f"| {metric} | {p['n_fake']:,} / {p['n_real']:,} | {p['precision']} "
                     f"(asked {asked}) | {_num(cached, 2)} | {_num(first, 2)} | {goal} |")
    return lines + [""]


def lucic_lines(data: dict[str, Any]) -> list[str]:
    r = data.get("lucic")
    if not r:
        return ["Lucic NS GAN trial: not measured (" + _status(data, "lucic") + ").", ""]
    t = r.get("train", {})
    evals = ", ".join(f"{e['value']:.2f} @ {e['step']}" for e in r.get("evals", []))
    cut = "" if r.get("status") == "completed" else f" (stopped: {_status(data, 'lucic')})"
    return [f"Lucic et al. 2018 protocol, NS GAN ({r['spec']['arch']} nets, batch "
            f"{t.get('batch_size')}, lr {r['setting']['lr_g']:g}, beta1 {r['setting']['beta1']}, "
            f"k {r['setting']['k']}, {r.get('total_iterations', 0):,} G steps on "
            f"{r['n_train']:,} digits): status {r.get('status')}{cut}; {r.get('iterations', 0):,} "
            f"iterations in {r.get('train_seconds', 0):.1f} s of training "
            f"({1000 * r.get('seconds_per_iteration', 0):.2f} ms per iteration, "
            f"{r.get('speed', {}).get('speed.precision', '-')}); {r['objective']} on "
            f"{r['n_fake']:,} vs {r['n_real']:,}: {evals or '-'} (best {_num(r.get('best'), 2)}; "
            f"Lucic's Table 2 best for NS GAN: {LUCIC_NS_GAN_FID}).", ""]


def projection_lines(data: dict[str, Any]) -> list[str]:
    p = data.get("projection")
    if not p:
        return ["Projected GPU-hours: not measured (" + _status(data, "projection") + ").", ""]
    pack = p["pack"]
    if str(p.get("device", "")).startswith("cuda"):
        hours = f"**{p['gpu_hours']:.2f} GPU-hours** on {p['device']} " + \
            f"({_target(p['gpu_hours'], TARGETS['gpu_hours'], False, ' GPU-hour')})"
    else:
        hours = f"{p['gpu_hours']:.2f} hours on {p.get('device')} (not a GPU: no target)"
    return [f"`suites/{p['suite']}.yaml` projected: {hours}; a pack of "
            f"{pack['trials']} {pack['gan']} trials ({pack['iterations']:,} G steps at k "
            f"{pack['k']}) ran {pack['speedup']:.2f}x the per-trial speed of one trial alone. "
            "Assumptions: " + "; ".join(p["assumptions"]) + ".", ""]


def steps_table(data: dict[str, Any]) -> list[str]:
    steps = (data.get("summary") or {}).get("steps", [])
    if not steps:
        return []
    return (["| step | status | seconds | note |", "| --- | --- | ---: | --- |"]
            + [f"| {s['name']} | {s['status']} | {s['seconds']:.1f} | {s.get('note') or ''} |"
               for s in steps] + [""])


def render(data: dict[str, Any]) -> str:
    """The markdown: header, training table, FID table, Lucic trial, projection, steps."""
    parts = [header(data), training_rows(data), fid_rows(data), lucic_lines(data),
             projection_lines(data), steps_table(data)]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="gpu_out", help="gpu_run.sh's $OUT (gpu_out)")
    args = ap.parse_args(argv)
    if not Path(args.folder).is_dir():
        raise SystemExit(f"perf_table.py: no folder {args.folder}")
    print(render(load(args.folder)), end="")


if __name__ == "__main__":
    main()
