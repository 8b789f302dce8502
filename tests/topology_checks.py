"""What a scale-out run of the smoke suite must leave behind, checked from outside: used by
tests/test_topology.py (native processes) and docker/smoke.sh (containers).

    python tests/topology_checks.py wait-running --storage URL [--tracking URL] --match :PID
    python tests/topology_checks.py check --storage URL --tracking URL --suite FILE --out DIR

`check` needs MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD for the server; it asserts:
complete + pruned trials equal the budget exactly per GAN, no finalist trained twice, no MLflow
run RUNNING, every finished run's artifacts readable through the server, `gan-bench report`
works from the server alone (a fresh folder), unauthenticated and wrong-password clients are
refused and the workers' credentials work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMOKE_GANS = ("toy_ns", "toy_hinge")
SMOKE_TRIALS, SMOKE_FINALISTS = 3, 2  # budget.trials; finalists.top x finalists.seeds


def running_owners(storage: str) -> list[str]:
    """Owner tokens ("host:space:pid") of the Optuna trials RUNNING now; [] before the tables."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text(
                "select a.value_json from trial_user_attributes a join trials t using (trial_id) "
                "where a.key = 'owner' and t.state = 'RUNNING'")).fetchall()
    except sqlalchemy.exc.ProgrammingError:  # the tables are not made yet
        return []
    finally:
        engine.dispose()
    return [str(json.loads(r[0])) for r in rows]


def wait_running(storage: str, match: str, timeout: float = 300) -> str:
    """Wait until a RUNNING trial's owner ends with `match` (":pid", ".space:pid")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [o for o in running_owners(storage) if o.endswith(match)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no RUNNING trial owned by ...{match} within {timeout:.0f} s")


def wait_running_run(tracking: str, match: str, timeout: float = 120) -> str:
    """Wait until an MLflow run whose owner tag ends with `match` is RUNNING (the worker is
    training: its Optuna trial is asked first, its run started right after); its name."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for exp in client.search_experiments():
            for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
                if run.data.tags.get("gan_bench.owner", "").endswith(match) \
                        and run.data.tags.get("stage") == "search":
                    return str(run.info.run_name)
        time.sleep(0.2)
    raise AssertionError(f"no RUNNING search run owned by ...{match} within {timeout:.0f} s")


def check(storage: str, tracking: str, suite: Path, out: Path) -> dict[str, int]:
    """The assertions of the module doc; returns counts for a log line."""
    import optuna
    import requests
    from mlflow.tracking import MlflowClient

    user, password = os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    counts: dict[str, int] = {}
    for gan in SMOKE_GANS:  # the budget, exactly, across every worker
        study = optuna.load_study(study_name=f"smoke/{gan}", storage=storage)
        done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(done) == SMOKE_TRIALS, [(t.number, t.state.name) for t in study.trials]
        counts[f"{gan}_trials"] = len(study.trials)
        counts[f"{gan}_failed"] = sum(t.state.name == "FAIL" for t in study.trials)

    client = MlflowClient(tracking)
    (exp,) = [e for e in client.search_experiments() if e.name == "smoke"]
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    running = [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert not running, f"runs left RUNNING: {running}"
    keys = [r.data.tags["gan_bench.key"] for r in runs
            if r.data.tags.get("stage") == "final" and r.info.status == "FINISHED"]
    assert len(keys) == len(set(keys)) == SMOKE_FINALISTS * len(SMOKE_GANS), keys
    finished = [r for r in runs if r.info.status == "FINISHED"
                and r.data.tags.get("stage") in ("search", "final")]
    for run in finished:  # artifacts through the server (no shared filesystem)
        names = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert "run.json" in names, (run.info.run_name, names)
    final = next(r for r in finished if r.data.tags.get("stage") == "final")
    out.mkdir(parents=True, exist_ok=True)
    local = client.download_artifacts(final.info.run_id, "metrics.json", str(out))
    assert Path(local).stat().st_size > 100
    counts.update(runs=len(runs), finished=len(finished))
    # the killed worker's run: ended FAILED (state orphaned) by a surviving worker
    orphaned = [r for r in runs if r.data.tags.get("state") == "orphaned"]
    assert [r.info.status for r in orphaned] == ["FAILED"], [
        (r.info.run_name, r.info.status, r.data.tags.get("state")) for r in runs]
    counts["orphaned"] = len(orphaned)

    fresh = out / "elsewhere"  # the report from the stores alone: nothing local
    fresh.mkdir(exist_ok=True)
    env = {**os.environ, "GAN_BENCH_STORAGE": storage, "GAN_BENCH_TRACKING_URI": tracking}
    report = subprocess.run([str(BIN / "gan-bench"), "report", str(suite), "--out",
                             str(fresh / "report")], env=env, cwd=fresh, capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    text = (fresh / "report" / "leaderboard.md").read_text()
    assert all(gan in text for gan in SMOKE_GANS)

    api = f"{tracking}/api/2.0/mlflow/experiments/search"
    assert requests.post(api, json={"max_results": 1}, timeout=10).status_code == 401
    assert requests.post(api, json={"max_results": 1}, auth=(user, "wrong"),
                         timeout=10).status_code == 401
    assert requests.post(api, json={"max_results": 1}, auth=(user, password),
                         timeout=10).status_code == 200
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["wait-running", "check"],
                        help="wait-running: until the worker's Optuna trial and MLflow run run")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--tracking")
    parser.add_argument("--suite", type=Path, default=ROOT / "suites" / "smoke.yaml")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--match", default="", help="wait-running: the end of the owner token, e.g. :1234")
    args = parser.parse_args()
    if args.what == "wait-running":
        owner = wait_running(args.storage, args.match)
        if args.tracking:
            wait_running_run(args.tracking, args.match)
        print(owner)
    else:
        print(json.dumps(check(args.storage, args.tracking, args.suite, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
