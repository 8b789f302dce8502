"""benchmark/scripts/gpu_run.sh (issue 15): its CPU dry run goes through every step of the GPU run
with tiny sizes, so the script cannot rot before a GPU runs it; perf_table.py turns the JSON into
the docs/gpu.md table; project_gpu_hours.py's arithmetic on known numbers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "benchmark" / "scripts"
DRY_STEPS = ["install", "setup", "gpu_tests", "perf_infogan_p2", "perf_dcgan_p2", "perf_wgan_gp_p2",
             "fid", "lucic",
             "projection"]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, mnist_arrays):
    """gpu_run.sh --dry-run once: a private cache that borrows the user's MNIST (read only)."""
    from gan_bench.cache import cache_root

    tmp = tmp_path_factory.mktemp("gpu_run")
    cache = tmp / "cache"
    cache.mkdir()
    if (cache_root() / "datasets").is_dir():
        (cache / "datasets").symlink_to(cache_root() / "datasets")
    env = {**os.environ, "OUT": str(tmp / "out"), "PYTHON": sys.executable,
           "GAN_BENCH_CACHE": str(cache), "CARRY": str(tmp / "no-carry"),
           "WHEELS": str(tmp / "no-wheels")}
    res = subprocess.run(["bash", str(SCRIPTS / "gpu_run.sh"), "--dry-run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    return res, tmp / "out"


@pytest.mark.slow
def test_dry_run_runs_every_step_and_writes_json(dry_run):
    res, out = dry_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "dry" and summary["ok"] is True
    assert [s["name"] for s in summary["steps"]] == DRY_STEPS
    assert {s["status"] for s in summary["steps"]} == {"ok"}, summary["steps"]
    assert all((out / s["log"]).is_file() for s in summary["steps"])
    for arch in ("infogan", "dcgan"):
        perf = json.loads((out / f"perf_{arch}_p2.json").read_text())
        assert [r["name"] for r in perf["rows"]] == ["reference", "solo", "packed x2"]
        assert perf["setting"]["arch"] == arch and perf["setting"]["batch"] == 64
        assert all(r["img_per_s"] > 0 for r in perf["rows"])
    wgp = json.loads((out / "perf_wgan_gp_p2.json").read_text())  # issue 24: WGAN-GP packs
    assert [r["name"] for r in wgp["rows"]] == ["solo", "packed x2"]
    assert wgp["setting"]["penalty"] == "gradient_penalty" and wgp["rows"][1]["img_per_s"] > 0
    fid = json.loads((out / "fid.json").read_text())
    assert [r.get("precision_requested", "fp32") for r in fid] == ["fp32", "fp32", "tf32", "tf32"]
    assert {r["protocol"]["precision"] for r in fid} == {"fp32-strict"}  # no TF32 on a CPU
    lucic = json.loads((out / "lucic.json").read_text())
    assert lucic["status"] == "completed" and lucic["iterations"] == 20
    assert [e["step"] for e in lucic["evals"]] == [10, 20]
    projection = json.loads((out / "projection.json").read_text())
    assert [g["name"] for g in projection["gans"]][:2] == ["gan", "ns_gan"]
    assert projection["gpu_hours"] == pytest.approx(
        sum(g["train_s"] + g["eval_s"] for g in projection["gans"]) / 3600)
    env = json.loads((out / "env.json").read_text())
    assert env["mode"] == "dry" and env["import_problems"] == [] and env["mnist"]


@pytest.mark.slow
def test_perf_table_renders_the_dry_run(dry_run):
    _, out = dry_run
    res = subprocess.run([sys.executable, str(SCRIPTS / "perf_table.py"), str(out)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert text.startswith("### Performance on no GPU (measured)") and "CPU dry run" in text
    for row in ("| infogan | trainer, one trial |", "| dcgan | packed x2 (aggregate) |",
                "| fid_mnist | 200 / 200 | fp32-strict (asked tf32) |"):
        assert row in text
    assert "`suites/mnist.yaml` projected:" in text and "Lucic et al. 2018 protocol" in text
    assert all(f"| {name} | ok |" in text for name in DRY_STEPS)


def _gpu_like(folder: Path) -> None:
    """What a GPU run would leave: targets reached for the fast row and FID, not for the pack."""
    def dump(name, obj):
        (folder / name).write_text(json.dumps(obj))

    dump("env.json", {"mode": "gpu", "gpu": "NVIDIA H200", "gpu_memory_mib": 143771,
                      "driver": "580.159.03", "torch": "2.11.0+cu130", "cuda": "13.0",
                      "cudnn": 91002, "python": "3.12.3", "date": "2027-01-01T00:00:00+00:00",
                      "git_sha": "abcdef0123456789", "cpu_count": 16})
    setting = {"arch": "infogan", "size": "full", "dataset": "mnist", "loss": "non_saturating",
               "batch": 64, "iters": 200, "warmup": 20, "pack": 8}
    rows = [{"name": "reference", "img_per_s": 1000.0, "ratio": 1.0, "precision": "fp32"},
            {"name": "fast", "img_per_s": 7000.0, "ratio": 7.0, "precision": "tf32"},
            {"name": "packed x8", "img_per_s": 12000.0, "ratio": 12.0, "precision": "tf32"}]
    dump("perf_infogan_p8.json", {"setting": setting, "rows": rows})
    strict = {"n_fake": 10000, "n_real": 10000, "precision": "fp32-strict"}
    dump("fid.json", [
        {"metric": "fid_inception", "seconds": 5.0, "protocol": strict},
        {"metric": "fid_inception", "seconds": 1.5, "protocol": strict},
        {"metric": "fid_inception", "seconds": 0.9, "precision_requested": "tf32",
         "protocol": {**strict, "precision": "tf32"}}])
    dump("projection.json", {"suite": "mnist", "device": "cuda (NVIDIA H200)", "gpu_hours": 0.8,
                             "pack": {"trials": 32, "gan": "dcgan", "iterations": 313, "k": 3,
                                      "speedup": 9.5}, "assumptions": ["an upper bound"]})
    dump("summary.json", {"mode": "gpu", "seconds": 400.0, "steps": [
        {"name": "lucic", "status": "timeout", "seconds": 100.0, "note": "stopped after 100s"}]})


def test_perf_table_states_each_target_and_what_is_missing(tmp_path):
    table = _script("perf_table")
    _gpu_like(tmp_path)
    text = table.render(table.load(tmp_path))
    assert text.startswith("### Performance on NVIDIA H200 (measured)") and "dry run" not in text
    assert "NVIDIA H200 (143,771 MiB), driver 580.159.03; torch 2.11.0+cu130" in text
    assert "| infogan | trainer, one trial | 7,000 | 7.00 | tf32 | >= 6x: reached |" in text  # an old "fast" row
    assert ("| infogan | packed x8 (aggregate) | 12,000 | 12.00 | tf32 | >= 15x: not reached |"
            in text)
    incep = "| fid_inception | 10,000 / 10,000 |"
    assert f"{incep} fp32-strict (asked fp32) | 1.50 | 5.00 | <= 2 s: reached |" in text
    assert f"{incep} tf32 (asked tf32) | - | 0.90 |  |" in text
    assert "**0.80 GPU-hours** on cuda (NVIDIA H200) (<= 1 GPU-hour: reached)" in text
    assert "Lucic NS GAN trial: not measured (step lucic: timeout, stopped after 100s)." in text
    assert "| lucic | timeout | 100.0 | stopped after 100s |" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    text = table.render(table.load(empty))
    assert "Training: not measured (step perf_infogan_p8: did not run)." in text


def test_projection_arithmetic_on_known_numbers():
    proj = _script("project_gpu_hours")

    class Count:  # estimate.GanCount's fields that `project` reads
        def __init__(self, name, steps, evals, final_evals):
            self.name, self.steps, self.evals, self.final_evals = name, steps, evals, final_evals

    counts = [Count("packed", 1000, 10, 2), Count("alone", 1000, 10, 2)]
    rows = proj.project(counts, step_s={"packed": 0.01, "alone": 0.02},
                        sample_s={"packed": 1e-5, "alone": 1e-5},
                        packable={"packed": True, "alone": False}, speedup=4.0,
                        objective_s=2e-5, extra_s=1e-4, n_fake_search=100, n_fake=1000)
    assert [r.train_s for r in rows] == pytest.approx([1000 * 0.01 / 4, 1000 * 0.02])
    evals = 10 * 100 * 3e-5 + 2 * 1000 * (3e-5 + 1e-4)
    assert [r.eval_s for r in rows] == pytest.approx([evals, evals])
    assert [r.speedup for r in rows] == [4.0, 1.0]
    assert rows[0].seconds == pytest.approx(2.5 + evals)


def test_inception_speed_is_read_from_the_fp32_rows(tmp_path):
    proj = _script("project_gpu_hours")
    _gpu_like(tmp_path)
    rows = json.loads((tmp_path / "fid.json").read_text())
    for r in rows:
        r["label"] = "x"
    (tmp_path / "fid.json").write_text(json.dumps(rows))
    per_image, source = proj.inception_s_per_sample(tmp_path / "fid.json")
    assert per_image == pytest.approx(1.5 / 10000) and source == "fid.json: x"  # not the tf32 row
    assert proj.inception_s_per_sample(tmp_path / "missing.json") == (None, "not measured")


def test_gpu_run_refuses_unknown_arguments():
    res = subprocess.run(["bash", str(SCRIPTS / "gpu_run.sh"), "--bogus"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and "unknown argument --bogus" in res.stderr
