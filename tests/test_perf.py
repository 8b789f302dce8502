"""`gan-bench perf` (perf.py) runs its rows (reference, solo, packs) and the FID timing with tiny
settings on a CPU, and prints progress."""

import json
import subprocess
import sys

from gan_bench.perf import PerfReport, PerfRow, format_report

TINY = ["perf", "--device", "cpu", "--arch", "mlp", "--size", "tiny", "--dataset", "ring8",
        "--iters", "3", "--warmup", "1", "--pack", "2", "--fid-samples", "500", "--threads", "1"]


def gan_bench(*args):
    return subprocess.run([sys.executable, "-m", "gan_bench.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_perf_prints_the_table_and_progress_on_cpu():
    res = gan_bench(*TINY[:-6], "--pack", "2,4", *TINY[-4:])
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert text.startswith("device: cpu (") and "torch threads 1" in text and "versions: torch " in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "img/s" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["reference", "solo", "packed x2", "packed x4"]
    assert rows[0].split("|")[3].strip() == "1.00"  # the reference is its own unit
    assert rows[1].split("|")[4].strip() == "1.00"  # so is the solo row for "x solo"
    assert "FID (fid_points, extractor identity, 500 generated" in text
    assert "these ratios say nothing about GPU speed" in text
    progress = [line for line in res.stderr.splitlines() if line.startswith("perf: mlp ")]
    assert [line.split(":")[1].strip() for line in progress] == [
        "mlp reference", "mlp solo", "mlp packed x2", "mlp packed x4", "mlp FID (fid_points, 500 samples)"]


def test_perf_json_has_every_measurement():
    res = gan_bench(*TINY, "--pack", "0", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert [r["name"] for r in report["rows"]] == ["reference", "solo"]
    for row in report["rows"]:
        assert row["iterations"] == 3 and row["images"] == 3 * 64 and row["seconds"] > 0
        assert abs(row["img_per_s"] - row["images"] / row["seconds"]) <= 1e-6 * row["img_per_s"]
    assert report["rows"][0]["ratio"] == 1.0 and report["rows"][1]["ratio_solo"] == 1.0
    assert report["fid"]["n_fake"] == 500 and report["fid"]["seconds"] >= report["fid"]["generate_s"] > 0
    assert report["setting"] == {"arch": "mlp", "size": "tiny", "dataset": "ring8", "loss": "non_saturating",
                                 "batch": 64, "iters": 3, "warmup": 1, "pack": []}


def test_perf_times_a_wgan_gp_pack_against_its_solo_row():
    """No reference loop for another loss: the ratios are against the solo row."""
    res = gan_bench("perf", "--device", "cpu", "--arch", "dcgan", "--size", "tiny", "--iters", "2",
                    "--warmup", "1", "--pack", "2", "--fid-samples", "0", "--threads", "1",
                    "--loss", "wasserstein", "--penalty", "gradient_penalty", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert [r["name"] for r in report["rows"]] == ["solo", "packed x2"]
    assert report["rows"][0]["ratio"] == 1.0 and report["setting"]["penalty"] == "gradient_penalty"
    assert any("no reference row" in n for n in report["notes"])


def test_bad_perf_arguments_exit_2():
    res = gan_bench("perf", "--iters", "0")
    assert res.returncode == 2 and res.stderr.startswith("error: --batch and --iters")
    res = gan_bench("perf", "--pack", "four")
    assert res.returncode == 2 and res.stderr.startswith("error: --pack four: expected pack sizes")


def test_format_report_ratios_and_fid_line():
    rows = [PerfRow("reference", "ref", 10, 640, 2.0, "fp32", 1.0, 0.25),
            PerfRow("solo", "ours", 10, 640, 0.5, "tf32", 4.0, 1.0),
            PerfRow("packed x8", "pack", 10, 5120, 1.0, "tf32", 16.0, 4.0)]
    report = PerfReport("cuda (X)", {"torch": "2"}, {"arch": "infogan", "size": "full", "dataset": "mnist",
                                                    "loss": "non_saturating", "batch": 64, "iters": 10,
                                                    "warmup": 5, "pack": 8}, rows,
                        {"metric": "fid_inception", "extractor": "inception_tf", "n_fake": 10000,
                         "n_real": 10000, "seconds": 1.5, "generate_s": 0.1, "value": 12.0})
    text = format_report(report)
    assert "| reference | 320 | 1.00 | 0.25 | fp32 |" in text and "| solo | 1,280 | 4.00 | 1.00 | tf32 |" in text
    assert "| packed x8 | 5,120 | 16.00 | 4.00 | tf32 |" in text
    assert "FID (fid_inception, extractor inception_tf, 10000 generated vs 10000 real" in text
    assert ": 1.50 s (generation 0.10 s)" in text
