"""The two service commands of a scale-out deployment (docker/compose.yaml, docker/README.md):

    python -m gan_bench.deploy migrate
        create / upgrade the Optuna tables (GAN_BENCH_STORAGE) and MLflow's backend tables
        (MLFLOW_BACKEND_STORE_URI) once, before the server and N workers start;
    python -m gan_bench.deploy mlflow-server ARGS...
        write MLflow's basic-auth config from the environment (MLFLOW_AUTH_DATABASE_URI: the
        user store; MLFLOW_AUTH_ADMIN_USERNAME / _PASSWORD: the account the workers use, made on
        the first start), then exec `mlflow server ARGS...` (with --app-name basic-auth).

Secrets come from the environment only (an env file or secrets of the orchestrator): nothing
is written into an image, and the config file holds no password.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from gan_bench.errors import UserInputError

__all__ = ["auth_config", "main"]

# Unauthenticated requests are refused whatever this says; it is what a user that is not the
# admin may do by default (the workers use the admin account; create read-only users for
# people who only look: docker/README.md).
DEFAULT_PERMISSION = "READ"


def auth_config(database_uri: str, admin_username: str) -> str:
    """MLflow's basic_auth.ini: the user store and the admin's name (its password stays in
    MLFLOW_AUTH_ADMIN_PASSWORD, read by MLflow at the first start)."""
    return ("[mlflow]\n"
            f"default_permission = {DEFAULT_PERMISSION}\n"
            f"database_uri = {database_uri}\n"
            f"admin_username = {admin_username}\n")


def _need(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise UserInputError(f"{name} is not set (docker/env.example lists what a deployment sets)")
    return value


def migrate() -> None:
    from gan_bench.study import migrate_storage  # deferred: optuna
    from gan_bench.tracking import migrate_backend  # deferred: mlflow

    migrate_storage(_need("GAN_BENCH_STORAGE"))
    print("gan-bench: Optuna storage ready", flush=True)
    migrate_backend(_need("MLFLOW_BACKEND_STORE_URI"))
    print("gan-bench: MLflow backend store ready", flush=True)


def mlflow_server(args: list[str]) -> None:
    """Write the auth config where MLFLOW_AUTH_CONFIG_PATH says, then become `mlflow server`."""
    path = Path(_need("MLFLOW_AUTH_CONFIG_PATH"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(auth_config(_need("MLFLOW_AUTH_DATABASE_URI"),
                                _need("MLFLOW_AUTH_ADMIN_USERNAME")))
    _need("MLFLOW_AUTH_ADMIN_PASSWORD")  # MLflow refuses to bootstrap the admin without it
    _need("MLFLOW_FLASK_SERVER_SECRET_KEY")  # CSRF tokens of the auth app's forms
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    os.execv(mlflow, [mlflow, "server", *args])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["migrate"] and len(argv) == 1:
            migrate()
        elif argv[:1] == ["mlflow-server"]:
            mlflow_server(argv[1:])
        else:
            raise UserInputError("usage: python -m gan_bench.deploy migrate | mlflow-server ARGS...")
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
