"""`gan-bench run` end to end on CPU: the smoke suite (ring8), kill + resume, failure
containment, two workers on PostgreSQL, and a tiny MNIST suite."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gan_bench.config import load_suite
from gan_bench.run import Runner

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
PG_URL = "postgresql+psycopg2://root@127.0.0.1:5432/test"
ONE_GAN = "gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating, arch_options: {size: tiny}}]"


def _optuna_counts(storage: str, name: str) -> dict[str, int]:
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=10000)


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "gan_bench.cli", *args]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    suite = load_suite(SMOKE, [f"output_dir={out}"])
    outcome = Runner(suite).run()
    return suite, outcome


def test_smoke_suite_studies_have_the_budget(smoke_run):
    suite, outcome = smoke_run
    assert len(outcome.gans) == len(suite.gans) >= 2
    for gan in outcome.gans:
        counts = _optuna_counts(outcome.storage_url, gan.study)
        assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == suite.budget.trials
        assert "RUNNING" not in counts
        assert gan.best_value is not None and set(gan.best_params) == {"lr_g", "lr_ratio", "k"}


def test_smoke_suite_mlflow_structure(smoke_run):
    from mlflow.tracking import MlflowClient

    suite, outcome = smoke_run
    runs = _runs(outcome.tracking_uri, suite.name)
    parents = [r for r in runs if r.data.tags.get("stage") == "study"]
    search = [r for r in runs if r.data.tags.get("stage") == "search"]
    finals = [r for r in runs if r.data.tags.get("stage") == "final"]
    assert len(parents) == len(suite.gans)
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED", "FAILED"}
    parent_ids = {r.info.run_id for r in parents}
    assert all(r.data.tags["mlflow.parentRunId"] in parent_ids for r in search + finals)
    assert len(search) == len(suite.gans) * suite.budget.trials
    expected_finals = len(suite.gans) * suite.finalists.top * suite.finalists.seeds
    assert len(finals) == expected_finals and all(r.info.status == "FINISHED" for r in finals)
    one = next(r for r in search if r.info.status == "FINISHED")
    for key in ("lr_g", "lr_d", "lr_ratio", "log10_lr_ratio", "k", "beta1", "beta2",
                "batch_size", "penalty", "seed", "iterations"):
        assert key in one.data.params, key
    lr_g, lr_d, ratio = (float(one.data.params[k]) for k in ("lr_g", "lr_d", "lr_ratio"))
    assert lr_d == pytest.approx(lr_g * ratio, rel=1e-6)
    assert float(one.data.params["log10_lr_ratio"]) == pytest.approx(math.log10(ratio), abs=1e-6)
    client = MlflowClient(outcome.tracking_uri, registry_uri=outcome.tracking_uri)
    curve = client.get_metric_history(one.info.run_id, "train/loss_d")
    assert len(curve) >= 2 and len({m.step for m in curve}) == len(curve)
    objective = client.get_metric_history(one.info.run_id, "eval/fid_points")
    assert [m.step for m in objective] == [100, 200]
    # grouped names only; no duplicate objective series; no constant lr curves
    assert all(k.split("/")[0] in ("train", "opt", "eval", "perf", "system")
               for k in one.data.metrics), sorted(one.data.metrics)
    assert not {"objective", "lr_g", "lr_d"} & set(one.data.metrics)
    images = [a.path for a in client.list_artifacts(one.info.run_id, "images")]
    steps = sorted(int(p.split("+")[2]) for p in images if p.endswith(".png"))
    assert steps == [100, 200] and one.data.tags.get("mlflow.loggedImages") == "True"
    for tag in ("gan", "stage", "state", "arch", "loss", "trial", "git_sha", "protocol",
                "mlflow.source.name", "mlflow.user"):
        assert tag in one.data.tags, tag
    assert not any(k.startswith(("protocol.", "version.")) for k in one.data.tags)
    assert one.info.run_name == f"t{one.data.tags['trial']} k={one.data.params['k']} " \
        f"r={float(one.data.params['lr_ratio']):.2g}"
    run_json = json.loads(Path(client.download_artifacts(one.info.run_id, "run.json")).read_text())
    assert run_json["protocol"]["fid_points"]["n_fake"] == suite.metrics.n_fake_search
    assert run_json["versions"]["torch"] and run_json["context"]["optuna_trial"] == \
        int(one.data.tags["trial"])
    for run in runs:  # a name is a param, a metric or a tag, never two of them
        params, metrics, tags = set(run.data.params), set(run.data.metrics), set(run.data.tags)
        assert not (params & metrics or params & tags or metrics & tags), run.info.run_name
    for run in finals:
        assert run.info.run_name == f"final s{run.data.params['seed']} <- " \
            f"t{run.data.tags['source_trial']}"
        for metric in [suite.metrics.objective, *suite.metrics.final]:
            assert any(k.startswith(f"final/{metric}") or k.startswith("final/modes")
                       for k in run.data.metrics), (metric, sorted(run.data.metrics))
        assert "final/objective" not in run.data.metrics
        assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")]
        assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["ring8/train", "ring8/test"]
    for parent in parents:  # the study's summary, comparable across GANs in the collapsed table
        m = parent.data.metrics
        gan_finals = [r for r in finals if r.data.tags["gan"] == parent.data.tags["gan"]]
        values = [r.data.metrics["final/fid_points"] for r in gan_finals]
        assert m["final/fid_points"] == pytest.approx(sum(values) / len(values), rel=1e-4)
        assert m["final_ci/fid_points_low"] <= m["final/fid_points"] <= m["final_ci/fid_points_high"]
        assert "final/modes_captured_n_modes" not in m  # records only, not their extras
        assert m["search/complete"] + m["search/pruned"] == suite.budget.trials
        assert "eval/fid_points" in m and "search/best_k" in m and "search/best_lr_ratio" in m
        assert parent.data.tags["mlflow.note.content"].startswith(f"**{parent.info.run_name}**")
        figures = [a.path for a in client.list_artifacts(parent.info.run_id, "figures")]
        assert figures == ["figures/finalists.png", "figures/search.png"]
        grids = [a.path for a in client.list_artifacts(parent.info.run_id, "images")]
        assert [p.split("+")[2] for p in grids if p.endswith(".png")] == [str(suite.budget.iterations)]
    exp = client.get_experiment_by_name(suite.name)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert suite.description.split()[0] in exp.tags["mlflow.note.content"]
    assert exp.artifact_location == f"mlflow-artifacts:/{suite.name}"
    for gan in suite.gans:  # the best finalist's generator, registered with alias "best"
        version = client.get_model_version_by_alias(f"{suite.name}.{gan.name}", "best")
        best = min((r for r in finals if r.data.tags["gan"] == gan.name),
                   key=lambda r: r.data.metrics["final/fid_points"])
        assert version.run_id == best.info.run_id


def test_rerun_adds_nothing(smoke_run):
    from mlflow.tracking import MlflowClient

    suite, outcome = smoke_run
    again = Runner(suite).run()
    assert again.new_trials == 0 and again.new_finalists == 0
    client = MlflowClient(outcome.tracking_uri, registry_uri=outcome.tracking_uri)
    for gan in suite.gans:  # the same best finalist: no new model version
        assert [int(v.version) for v in client.search_model_versions(
            f"name = '{suite.name}.{gan.name}'")] == [1]
    runs = _runs(outcome.tracking_uri, suite.name)
    assert len([r for r in runs if r.data.tags.get("stage") == "study"]) == len(suite.gans)


def test_diverging_trials_fail_with_a_reason_and_the_study_goes_on(tmp_path):
    suite = load_suite(SMOKE, [f"output_dir={tmp_path}", "gans=[{name: wgan_toy, arch: toy_mlp, "
                               "loss: wasserstein, arch_options: {size: tiny}, train: {beta1: 0.0}}]",
                               "search.lr_g={choices: [0.001, 1.0e+12]}", "search.k=1",
                               "search.lr_ratio=1.0", "budget.trials=4", "budget.max_failures=10",
                               "sampler.name=random", "finalists.top=0", "pruner.name=none"])
    outcome = Runner(suite).run()
    import optuna

    study = optuna.load_study(study_name=outcome.gans[0].study, storage=outcome.storage_url)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and failed
    assert all(t.params["lr_g"] == 1e12 for t in failed)
    assert all(t.user_attrs["failure_kind"] == "diverged" and "not finite" in t.user_attrs["fail_reason"]
               for t in failed)
    runs = _runs(outcome.tracking_uri, suite.name)
    failed_runs = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed_runs) == len(failed)
    assert all("not finite" in r.data.tags["fail_reason"] for r in failed_runs)
    assert all(r.info.run_name.endswith(" failed") for r in failed_runs)


def _wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen in {timeout}s:\n{log.read_text()}")


def test_sigkill_mid_trial_then_rerun_completes_the_budget(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gan_bench.cli", "run", str(SMOKE), "--plain",
           "--set", f"output_dir={out}", "--set", ONE_GAN, "--set", "budget.iterations=1000",
           "--set", "budget.eval_every=500", "--set", "budget.trials=2", "--set", "finalists.top=0"]
    log = tmp_path / "first.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            _wait_for(proc, log, "trial 1:", 120)
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    suite = load_suite(SMOKE, [f"output_dir={out}", ONE_GAN, "budget.trials=2"])
    storage = f"sqlite:///{out / 'optuna.db'}"
    import optuna

    for gan in suite.resolved_gans():
        study = optuna.load_study(study_name=f"{suite.name}/{gan.name}", storage=storage)
        states = [t.state.name for t in study.trials]
        assert states.count("COMPLETE") + states.count("PRUNED") == suite.budget.trials
        assert "RUNNING" not in states
    runs = _runs(f"sqlite:///{out / 'mlflow.db'}", suite.name)
    assert all(r.info.status != "RUNNING" for r in runs)
    orphaned = [r for r in runs if r.data.tags.get("state") == "orphaned"]
    assert orphaned, "the killed trial's MLflow run should have been closed as orphaned"


def _postgres_or_skip() -> None:
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
    except Exception as exc:  # no server on this machine (a laptop): say so
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({type(exc).__name__}); the two-worker "
                    f"test needs one")


def test_two_workers_share_one_study_on_postgresql(tmp_path):
    _postgres_or_skip()
    name = f"smoke_pg_{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    common = ["--plain", "--set", f"name={name}", "--set", f"output_dir={out}",
              "--set", f"storage={PG_URL}", "--set", "budget.trials=4", "--set", "finalists.top=0",
              "--set", ONE_GAN, "--set", "budget.iterations=100", "--set", "budget.eval_every=50"]
    procs = [subprocess.Popen([sys.executable, "-m", "gan_bench.cli", "run", str(SMOKE), *common,
                               "--worker", str(w)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=tmp_path) for w in (0, 1)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    suite = load_suite(SMOKE, [f"name={name}", ONE_GAN])
    import optuna

    for gan in suite.resolved_gans():
        study = optuna.load_study(study_name=f"{name}/{gan.name}", storage=PG_URL)
        done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(done) == 4
        assert len({t.number for t in done}) == 4
        owners = {t.user_attrs["owner"] for t in study.trials}
        seeds = {t.user_attrs["sampler_seed"] for t in study.trials}
        assert len(seeds) == len(owners)  # never two workers with one sampler seed


def test_tiny_mnist_suite(tmp_path):
    pytest.importorskip("gan_bench.metrics.evaluator")
    from gan_bench.errors import DataUnavailableError

    suite = load_suite(ROOT / "suites" / "smoke_mnist.yaml", [f"output_dir={tmp_path}"])
    try:
        outcome = Runner(suite).run()
    except DataUnavailableError as exc:
        pytest.skip(f"MNIST not available offline here: {exc}")
    gan = outcome.gans[0]
    assert gan.complete + gan.pruned == suite.budget.trials
    assert 0 < gan.best_value < 4000  # 30 tiny iterations: far from digits, below noise (~2900)
    runs = _runs(outcome.tracking_uri, suite.name)
    finals = [r for r in runs if r.data.tags.get("stage") == "final"]
    assert len(finals) == suite.finalists.top * suite.finalists.seeds
    assert 1 <= finals[0].data.metrics["final/is_mnist"] <= 10


def test_ctrl_c_marks_the_trial_and_exits_130(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gan_bench.cli", "run", str(SMOKE), "--plain", "--no-report",
           "--set", f"output_dir={out}", "--set", ONE_GAN, "--set", "budget.iterations=100000",
           "--set", "budget.eval_every=50000", "--set", "budget.trials=2"]
    log = tmp_path / "run.log"
    with open(log, "w") as fh:
        # a shell without job control starts background jobs (CI runners, nohup) with SIGINT
        # ignored, and Python keeps an inherited SIG_IGN: give the child the default, as a terminal does
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            _wait_for(proc, log, "trial 0:", 120)
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 130, log.read_text()
        finally:
            if proc.poll() is None:  # never leave a 100000-iteration run behind
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "run the same command again" in text, text
    import optuna

    study = optuna.load_study(study_name="smoke/toy_ns", storage=f"sqlite:///{out / 'optuna.db'}")
    states = [(t.state.name, t.user_attrs.get("failure_kind")) for t in study.trials]
    assert ("FAIL", "interrupted") in states and all(s != "RUNNING" for s, _ in states), (states, text)
    assert [s for s, _ in states].count("WAITING") == 1, (states, text)  # its params, queued again
    runs = _runs(f"sqlite:///{out / 'mlflow.db'}", "smoke")
    trial_runs = [r for r in runs if r.data.tags.get("stage") == "search"]
    assert [(r.info.status, r.data.tags.get("state")) for r in trial_runs] == [("KILLED", "interrupted")]
    assert all(r.info.status != "RUNNING" for r in runs)


def test_an_error_in_our_code_is_recorded_and_raised(tmp_path, monkeypatch):
    from gan_bench.metrics.evaluator import Evaluator

    def broken(self, fake, metrics=None):
        raise RuntimeError("bug in a metric")

    monkeypatch.setattr(Evaluator, "evaluate", broken)
    suite = load_suite(SMOKE, [f"output_dir={tmp_path}", ONE_GAN, "budget.trials=2"])
    with pytest.raises(RuntimeError, match="bug in a metric"):
        Runner(suite).run()
    import optuna

    study = optuna.load_study(study_name="smoke/toy_ns", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    [trial] = study.trials
    assert trial.state.name == "FAIL" and trial.user_attrs["failure_kind"] == "error"
    assert "bug in a metric" in trial.user_attrs["fail_reason"]
    runs = _runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke")
    search = [r for r in runs if r.data.tags.get("stage") == "search"]
    assert [r.info.status for r in search] == ["FAILED"]
    assert all(r.info.status != "RUNNING" for r in runs)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    import socket

    root = tmp_path_factory.mktemp("mlflow_server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{root}/db.sqlite",
                             "--artifacts-destination", str(root / "art"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.skip("mlflow server did not start")
            time.sleep(1)
    else:
        proc.kill()
        pytest.skip("mlflow server did not answer within 90 s")
    yield url, root
    proc.terminate()
    proc.wait(30)


def test_an_http_tracking_server_works(tmp_path, mlflow_server):
    url, root = mlflow_server
    suite = load_suite(SMOKE, [f"output_dir={tmp_path}", ONE_GAN, "budget.trials=1",
                               "finalists.seeds=1", f"tracking_uri={url}", "search.k=1",
                               "search.lr_ratio=1.0", "search.lr_g=0.001"])
    outcome = Runner(suite).run()
    runs = _runs(url, suite.name)
    assert sorted(r.data.tags["stage"] for r in runs) == ["final", "search", "study"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not (tmp_path / "mlartifacts").exists()  # artifacts went to the server's store
    assert list((root / "art").rglob("*.png")) and outcome.tracking_uri == url
