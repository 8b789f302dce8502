"""Peak PostgreSQL connections of N gan-bench workers sharing one Optuna storage.

    python benchmark/scripts/pg_connections.py --workers 8 [--suite suites/smoke.yaml]

Makes two fresh databases on the PostgreSQL at --server (default the machine's,
127.0.0.1:5432, trust auth): the Optuna storage and an MLflow backend that the workers use
directly (the topology without an MLflow server; behind a server, the server's own pool is
fixed whatever N is), runs the migrate step, starts N `gan-bench run SUITE --worker auto`
processes, samples pg_stat_activity every 0.1 s until they exit, prints one JSON line:
workers, peak and mean connections to each database, per worker, wall seconds.
docs/scaling.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--suite", default=str(ROOT / "suites" / "smoke.yaml"))
    parser.add_argument("--server", default="postgresql+psycopg2://root@127.0.0.1:5432")
    parser.add_argument("--set", action="append", default=[], help="--set passed to every worker")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    names = {"optuna": f"gb_conn_{tag}_optuna", "mlflow": f"gb_conn_{tag}_mlflow"}
    admin = sqlalchemy.create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT",
                                     poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url, mlflow = (f"{args.server}/{names[k]}" for k in ("optuna", "mlflow"))
    try:
        env = {**os.environ, "GAN_BENCH_STORAGE": url, "GAN_BENCH_TRACKING_URI": mlflow,
               "MLFLOW_BACKEND_STORE_URI": mlflow, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "gan_bench.deploy", "migrate"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        with tempfile.TemporaryDirectory(prefix="gan-bench-conn-") as tmp:
            start = time.monotonic()
            procs = [subprocess.Popen(
                [str(BIN / "gan-bench"), "run", args.suite, "--worker", "auto", "--plain",
                 "--no-estimate", "--no-report", "--set", f"output_dir={tmp}/w{i}",
                 *[a for s in args.set for a in ("--set", s)]],
                env=env, stdout=open(f"{tmp}/w{i}.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
                for i in range(args.workers)]
            samples: dict[str, list[int]] = {k: [] for k in names}
            query = sqlalchemy.text("select count(*) from pg_stat_activity where datname = :d")
            with admin.connect() as conn:
                while any(p.poll() is None for p in procs):
                    for kind, name in names.items():
                        samples[kind].append(conn.execute(query, {"d": name}).scalar_one())
                    time.sleep(0.1)
            wall = time.monotonic() - start
            codes = [p.returncode for p in procs]
            for i, code in enumerate(codes):
                if code:
                    tail = Path(f"{tmp}/w{i}.log").read_text().splitlines()[-5:]
                    print(f"worker {i} exited {code}:", *tail, sep="\n  ", file=sys.stderr)
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    out: dict[str, object] = {"workers": args.workers}
    for kind, values in samples.items():
        peak = max(values, default=0)
        out[kind] = {"peak": peak, "mean": round(sum(values) / max(len(values), 1), 1),
                     "peak_per_worker": round(peak / args.workers, 2)}
    out.update(wall_s=round(wall, 1), exit_codes=codes)
    print(json.dumps(out))
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
