#!/bin/sh
# First start of the postgres service: the MLflow backend and MLflow's auth store get their own
# databases next to POSTGRES_DB=optuna (both projects keep an `alembic_version` table).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE DATABASE mlflow OWNER "$POSTGRES_USER";
CREATE DATABASE mlflow_auth OWNER "$POSTGRES_USER";
SQL
