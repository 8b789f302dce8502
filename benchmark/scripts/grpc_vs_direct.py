"""Optuna's gRPC storage proxy against direct PostgreSQL connections, for N workers.

    python benchmark/scripts/grpc_vs_direct.py --workers 8 --trials 25

Each of N processes asks and tells `--trials` trials of a 3-parameter space (TPE) in one study,
once with RDBStorage on PostgreSQL (gan-bench's pool: study.SERVER_POOL) and once through
`optuna.storages.GrpcStorageProxy` to one `run_grpc_proxy_server` process on the same database.
Prints one JSON line per mode: wall seconds, trials per second, peak connections to the
database (pg_stat_activity, sampled every 0.1 s). Needs grpcio (not a gan-bench dependency:
`pip install grpcio`); docs/scaling.md says what it measured and why gan-bench keeps
direct connections.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import sys
import time
import uuid

import sqlalchemy


def _space() -> dict:
    import optuna

    d = optuna.distributions
    return {"lr_g": d.FloatDistribution(1e-5, 1e-3, log=True),
            "lr_ratio": d.FloatDistribution(0.1, 10.0, log=True), "k": d.IntDistribution(1, 5)}


def _storage(mode: str, url: str, port: int):
    import optuna

    from gan_bench.study import SERVER_POOL

    if mode == "direct":
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True, **SERVER_POOL})
    return optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)


def _worker(mode: str, url: str, port: int, name: str, trials: int, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=_storage(mode, url, port),
                              sampler=optuna.samplers.TPESampler(seed=seed))
    space = _space()
    for _ in range(trials):
        trial = study.ask(space)
        study.tell(trial, trial.params["lr_g"] * trial.params["lr_ratio"] + trial.params["k"])


def _proxy(url: str, port: int) -> None:
    import optuna

    optuna.storages.run_grpc_proxy_server(optuna.storages.RDBStorage(url), host="127.0.0.1",
                                          port=port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--server", default="postgresql+psycopg2://root@127.0.0.1:5432")
    args = parser.parse_args()
    try:
        import grpc  # noqa: F401
    except ImportError:
        print("grpcio is not installed (pip install grpcio): nothing measured", file=sys.stderr)
        return 2
    import optuna

    admin = sqlalchemy.create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT",
                                     poolclass=sqlalchemy.pool.NullPool)
    ctx = mp.get_context("spawn")
    for mode in ("direct", "grpc"):
        db = f"gb_grpc_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{db}"'))
        url = f"{args.server}/{db}"
        proxy = None
        try:
            optuna.create_study(study_name="s", storage=url)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if mode == "grpc":
                proxy = ctx.Process(target=_proxy, args=(url, port), daemon=True)
                proxy.start()
                time.sleep(3)
            start = time.monotonic()
            procs = [ctx.Process(target=_worker, args=(mode, url, port, "s", args.trials, i))
                     for i in range(args.workers)]
            for p in procs:
                p.start()
            peak, query = 0, sqlalchemy.text("select count(*) from pg_stat_activity where datname = :d")
            with admin.connect() as conn:
                while any(p.is_alive() for p in procs):
                    peak = max(peak, conn.execute(query, {"d": db}).scalar_one())
                    time.sleep(0.1)
            wall = time.monotonic() - start
            n = len(optuna.load_study(study_name="s", storage=url).trials)
            print(json.dumps({"mode": mode, "workers": args.workers, "trials": n,
                              "wall_s": round(wall, 2), "trials_per_s": round(n / wall, 1),
                              "peak_connections": peak,
                              "exit_codes": [p.exitcode for p in procs]}), flush=True)
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.join(10)
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
