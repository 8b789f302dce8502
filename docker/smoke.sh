#!/usr/bin/env bash
# A real docker run of the deployment (issue 26): build the image on a local base, bring up
# docker/compose.yaml + docker/compose.test.yaml (host networking, ports 55432 / 55000) with
# PostgreSQL, the MLflow server and 2 workers on the smoke suite, SIGKILL one worker container
# in the middle of a trial, let the other finish, check what tests/topology_checks.py checks,
# tear everything down (volumes too).
#
#   sudo docker/smoke.sh            # needs dockerd; builds gan-bench-base:bookworm if missing
#
# Exit 0: passed; 1: a check failed; 77: skipped (no docker daemon / no way to get a base image),
# with the reason on stderr. Offline: the image installs from docker/wheels (filled here from
# this venv's pip configuration: pip download of the pinned dependencies), never from an index.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
PROJECT=gbsmoke
BASE=${BASE:-gan-bench-base:bookworm}
LOG=${LOG:-/tmp/gan-bench-docker-smoke}
mkdir -p "$LOG"
t0=$(date +%s)
stamp() { echo "[smoke +$(( $(date +%s) - t0 ))s] $*"; }
skip() { echo "docker smoke skipped: $*" >&2; exit 77; }

docker info >/dev/null 2>&1 || skip "no docker daemon answers (start dockerd as root)"
command -v docker-compose >/dev/null || skip "docker-compose is not installed"

# 1. a base image with python3: Debian's packages through debootstrap (no registry here)
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || skip "no $BASE and no debootstrap to make it"
    mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    stamp "debootstrap bookworm from ${mirror:=http://deb.debian.org/debian}"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
        "$rootfs" "$mirror" > "$LOG/debootstrap.log" 2>&1
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$rootfs"
fi

# 2. wheels for an offline build, then the two images
stamp "pip download of the pinned runtime + deploy dependencies into docker/wheels"
"$PY" - > "$LOG/requirements.txt" <<'EOF'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["deploy"] + ["setuptools>=68", "wheel"]))
EOF
"$PY" -m pip download -q -c constraints.txt -r "$LOG/requirements.txt" -d docker/wheels \
    > "$LOG/wheels.log" 2>&1
b0=$(date +%s)
stamp "docker build gan-bench:local (BASE=$BASE)"
docker build --network host -f docker/Dockerfile --build-arg BASE="$BASE" \
    --build-arg PIP_NO_INDEX=1 -t gan-bench:local . > "$LOG/build-worker.log" 2>&1
stamp "  built in $(( $(date +%s) - b0 )) s; $(docker image inspect -f '{{.Size}}' gan-bench:local | awk '{printf "%.1f GB", $1/1e9}')"
docker build --network host -f docker/test/postgres.Dockerfile --build-arg BASE="$BASE" \
    -t gan-bench-postgres:local . > "$LOG/build-postgres.log" 2>&1
stamp "  postgres image built"

# 3. up: secrets made for this run only
env_file="$LOG/smoke.env"
secret() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'; }
cat > "$env_file" <<EOF
POSTGRES_PASSWORD=$(secret)
MLFLOW_USER=gan-bench
MLFLOW_PASSWORD=$(secret)
MLFLOW_SECRET_KEY=$(secret)$(secret)
SUITE=smoke
GAN_BENCH_IMAGE=gan-bench:local
WORKER_THREADS=1
EOF
# compose.yaml + compose.test.yaml, merged; a host-network service publishes no port (compose
# v1 cannot remove a list entry in an override, and docker refuses ports with host networking)
merged="$LOG/compose.smoke.yaml"
docker-compose -f docker/compose.yaml -f docker/compose.test.yaml --env-file "$env_file" config \
    | "$PY" -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
for service in doc["services"].values():
    if service.get("network_mode") == "host":
        service.pop("ports", None)
yaml.safe_dump(doc, sys.stdout, sort_keys=False)' > "$merged"
compose() { docker-compose -p "$PROJECT" -f "$merged" --project-directory "$ROOT/docker" "$@"; }
down() { compose down -v --remove-orphans > "$LOG/down.log" 2>&1 || true; }
trap 'down; rm -f "$merged"' EXIT  # the merged file holds this run's secrets
down
u0=$(date +%s)
stamp "compose up: postgres, migrate, mlflow, 2 workers"
compose up -d --scale worker=2 > "$LOG/up.log" 2>&1
stamp "  up in $(( $(date +%s) - u0 )) s"

# 4. kill one worker container in the middle of a trial
set -a; . "$env_file"; set +a
storage="postgresql+psycopg2://gan:${POSTGRES_PASSWORD}@127.0.0.1:55432/optuna"
workers=$(compose ps -q worker)  # (no `| head`: a closed pipe would fail under pipefail)
victim=${workers%%$'\n'*}
pid=$(docker inspect -f '{{.State.Pid}}' "$victim")
space=$(stat -L -c %i "/proc/$pid/ns/pid")  # the container's PID namespace, as owners name it
owner=$(MLFLOW_TRACKING_USERNAME=$MLFLOW_USER MLFLOW_TRACKING_PASSWORD=$MLFLOW_PASSWORD \
    "$PY" tests/topology_checks.py wait-running --storage "$storage" \
    --tracking http://127.0.0.1:55000 --match ".$space:1")
stamp "SIGKILL worker container ${victim:0:12} while it trains (owner $owner)"
docker kill -s KILL "$victim" >/dev/null

# 5. the other worker finishes; then every check of the native test
survivor=$(printf '%s\n' "$workers" | grep -v "$victim")
code=$(docker wait "$survivor")
compose logs --no-color > "$LOG/compose.log" 2>&1 || true
stamp "surviving worker exited $code"
[ "$code" = 0 ] || { echo "worker failed; see $LOG/compose.log" >&2; exit 1; }
MLFLOW_TRACKING_USERNAME=$MLFLOW_USER MLFLOW_TRACKING_PASSWORD=$MLFLOW_PASSWORD \
    "$PY" tests/topology_checks.py check --storage "$storage" --tracking http://127.0.0.1:55000 \
    --out "$LOG/check" | tee "$LOG/check.json"
grep -h "worker index" "$LOG/compose.log" | sed 's/^/  /' || true
stamp "passed: budget exact, no finalist twice, nothing RUNNING, artifacts via the server, report from the server, auth enforced"
