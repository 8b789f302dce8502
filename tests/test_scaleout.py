"""Scale-out pieces that need no server: stores from the environment, --worker auto's
atomic indexes, bad input to --worker and to the deploy commands (one line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gan_bench.config import load_suite
from gan_bench.deploy import auth_config, main
from gan_bench.study import claim_worker_index

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.yaml"


def test_the_environment_fills_stores_the_suite_leaves_out(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_BENCH_STORAGE", "postgresql+psycopg2://u:pw@db:5432/optuna")
    monkeypatch.setenv("GAN_BENCH_TRACKING_URI", "http://mlflow:5000")
    suite = load_suite(SMOKE)
    assert (suite.storage, suite.tracking_uri) == ("postgresql+psycopg2://u:pw@db:5432/optuna",
                                                   "http://mlflow:5000")
    assert load_suite(SMOKE, ["tracking_uri=http://other:5000"]).tracking_uri == \
        "http://other:5000"  # --set wins
    own = tmp_path / "own.yaml"
    own.write_text(SMOKE.read_text() + "storage: sqlite:///elsewhere.db\n")
    assert load_suite(own).storage == "sqlite:///elsewhere.db"  # the file wins
    monkeypatch.setenv("GAN_BENCH_TRACKING_URI", "gopher://x")
    with pytest.raises(Exception, match="tracking_uri"):  # checked like the file's own value
        load_suite(SMOKE)


def test_worker_auto_gives_every_worker_its_own_index(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    claim_worker_index(url, "warm-up")  # the tables exist before the race, as after migrate
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(claim_worker_index(url, "suite")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(8))
    assert claim_worker_index(url, "suite") == 8  # indexes are never reused
    assert claim_worker_index(url, "other-suite") == 0


def test_a_bad_worker_index_is_one_line_and_exit_2():
    done = subprocess.run([str(Path(sys.executable).parent / "gan-bench"), "run", str(SMOKE),
                           "--worker", "two"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: Invalid value for '--worker'") and \
        line.endswith("'two' is not an index 0, 1, 2, ... or auto (see `gan-bench run --help`)")


def test_deploy_commands_refuse_bad_input_in_one_line(monkeypatch, capsys):
    assert main(["nonsense"]) == 2
    monkeypatch.delenv("GAN_BENCH_STORAGE", raising=False)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: GAN_BENCH_STORAGE is not set (docker/env.example lists what a " \
                      "deployment sets)"
    text = auth_config("postgresql+psycopg2://gan:pw@postgres:5432/mlflow_auth", "gan-bench")
    assert "admin_username = gan-bench" in text and "admin_password" not in text
