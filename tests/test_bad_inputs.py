"""Issue 13, sections 2 and 3: bad input that `validate` accepted and `run` (or `report`) then
crashed on, after writing `runs/<name>/`. Each row is one hostile case from the audit; each must
end in exactly one `error:` line naming the offending field, exit code 2, no traceback, and
nothing written in the working folder. `gan-bench` runs in-process through `cli.main()` (as
tests/test_score_cli.py does), so a row costs a suite validation, not a Python start.

Value checks that need no command (types, finiteness, options, sizes) are rows of
tests/test_config.py's MALFORMED table; `score` rows are in tests/test_score_cli.py's BAD table.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import cli_main

from gan_bench import preflight
from gan_bench.config import load_suite
from gan_bench.metrics.records import protocol_differences

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
ONE_GAN = "gans=[{name: toy_ns, arch: toy_mlp, loss: non_saturating}]"
PG = "postgresql+psycopg2://root@127.0.0.1:5432"
RO_FS = "/sys/gan-bench-test"  # sysfs refuses new files even to root


def gan_bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `gan-bench ARGS` run through cli.main()."""
    return cli_main(monkeypatch, capsys, *args)


def assert_one_line(code: int, out: str, err: str, expected: str) -> None:
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in out + err


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each "{name}" replaced (not str.format: YAML overrides hold braces)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _postgres() -> str | None:
    """None when PostgreSQL answers at 127.0.0.1:5432, else why not."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(f"{PG}/test", connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"no PostgreSQL at 127.0.0.1:5432 ({type(exc).__name__})"
    return None


def _read_only_fs() -> str | None:
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return "/sys is writable here, so there is no read-only filesystem to point at"
    except OSError:
        return None


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # a web server, but not MLflow's: every path is a 404
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_404():
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder holding one plain file, `afile`; the test checks it is untouched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    yield tmp_path
    read_only.chmod(0o755)


# --- run: checked before anything is written ------------------------------------------------

# (what, needs, --set overrides, the one line contains); "{cwd}" is the working folder.
# needs: "" always runs; "ro_fs" a read-only filesystem; "ro_dir" a user that respects chmod;
# "pg" the PostgreSQL server; "http_404" a local web server that is not MLflow.
RUN_BAD = [
    ("output_dir is a file", "", ["output_dir=afile"],
     "output_dir: {cwd}/afile is a file, not a folder"),
    ("output_dir below a file", "", ["output_dir=afile/out"],
     "output_dir: {cwd}/afile is a file, so {cwd}/afile/out cannot be created below it"),
    ("output_dir on a read-only filesystem", "ro_fs", [f"output_dir={RO_FS}/out"],
     f"output_dir: cannot create {RO_FS}/out: cannot write in /sys"),
    ("output_dir in a read-only folder", "ro_dir", ["output_dir=read_only/out"],
     "output_dir: cannot create {cwd}/read_only/out: cannot write in {cwd}/read_only"),
    ("storage on a closed port", "", ["storage=postgresql+psycopg2://root@127.0.0.1:1/x"],
     "storage: cannot connect to postgresql+psycopg2://root@127.0.0.1:1/x (connection to server "
     "at \"127.0.0.1\", port 1 failed: Connection refused"),
    ("storage on a host that does not exist", "",
     ["storage=postgresql+psycopg2://root@nonexistent.invalid:5432/x"],
     "storage: cannot connect to postgresql+psycopg2://root@nonexistent.invalid:5432/x (could "
     "not translate host name"),
    ("storage: a database that does not exist", "pg",
     [f"storage={PG}/gan_bench_no_such_db"],
     'database "gan_bench_no_such_db" does not exist'),
    ("storage password is not printed", "pg",
     ["storage=postgresql+psycopg2://root:s3cret@127.0.0.1:5432/gan_bench_no_such_db"],
     "postgresql+psycopg2://root:***@127.0.0.1:5432/gan_bench_no_such_db"),
    ("storage with a bad scheme", "", ["storage=bogus://host/x"],
     "storage: unknown database scheme 'bogus'"),
    ("storage garbage", "", ["storage='::::garbage::::'"], "storage: not a database URL"),
    ("sqlite storage on a read-only filesystem", "ro_fs", [f"storage=sqlite:///{RO_FS}/optuna.db"],
     f"storage: cannot create {RO_FS}: cannot write in /sys"),
    ("sqlite tracking_uri on a read-only filesystem", "ro_fs",
     [f"tracking_uri=sqlite:///{RO_FS}/mlflow.db"],
     f"tracking_uri: cannot create {RO_FS}: cannot write in /sys"),
    ("sqlite tracking_uri in a read-only folder", "ro_dir",
     ["tracking_uri=sqlite:///read_only/mlflow.db"], "tracking_uri: cannot write in"),
    ("tracking_uri garbage", "", ["tracking_uri='::::garbage::::'"],
     "tracking_uri: not a tracking URI MLflow can use (use sqlite:///path/mlflow.db"),
    ("tracking_uri with a bad scheme", "", ["tracking_uri=bogus://host/x"],
     "tracking_uri: not a tracking URI MLflow can use"),
    ("tracking_uri nobody answers", "", ["tracking_uri=http://127.0.0.1:1"],
     "tracking_uri: no server answers at http://127.0.0.1:1 within 5 s"),
    ("tracking_uri that is not MLflow", "http_404", ["tracking_uri={http_404}"],
     "tracking_uri: no MLflow server at {http_404} (GET /health gave HTTP 404)"),
    # static problems: `run` refuses them as `validate` does, before writing anything
    ("unknown dataset option", "", ["dataset.options={sigmaa: 0.1}"],
     "dataset.options.sigmaa: unknown option of ring8 (known: data_dir, n, seed, sigma"),
    ("sampler seed 2**70", "", ["sampler.seed=1180591620717411303424"],
     "sampler.seed: must be < 2147483648"),
    ("infinite lr_g.high", "", ["search.lr_g.high=.inf"],
     "search.lr_g.high: must be a finite number (got inf)"),
    ("infinite lr_g", "", ["search.lr_g=.inf"], "search.lr_g: must be a finite number (got inf)"),
    ("lr_ratio 'inf'", "", ["search.lr_ratio='inf'"], "search.lr_ratio: must be a finite number"),
    ("train.lr_d inf", "", ["train.lr_d=inf"], "train.lr_d: must be a finite number (got inf)"),
    ("train.beta2 nan", "", ["train.beta2=.nan"], "train.beta2: must be a finite number (got nan)"),
    ("least_squares a nan", "", ["gans=[{name: ls, arch: toy_mlp, loss: least_squares, "
                                  "loss_params: {a: .nan}}]"],
     "gans[0].loss_params.a: must be a finite number (got nan)"),
    ("batch_size 1e12", "", [ONE_GAN, "search.batch_size=1000000000000"],
     "gans[0] (toy_ns) batch_size: 1000000000000 samples of shape (2,) in one training step "
     "(batch and the activations of G and D) take"),
    ("n_fake_search 1e12", "", ["metrics.n_fake_search=1000000000000"],
     "metrics.n_fake_search: 1000000000000 samples of shape (2,) as float32 take 8 TB"),
    ("finalists.top true", "", ["finalists.top=true"],
     "finalists.top: must be an integer, not true"),
    # late failures: found after a trial's training, or after the search, before the fix
    ("modes with too few n_fake", "", ["metrics.n_fake=100"],
     "metrics.n_fake: modes needs at least 2500 generated samples"),
    ("a metric that does not fit the dataset", "", ["metrics.final=[is_mnist]"],
     "metrics.final[0]: is_mnist: the MNIST classifier knows handwritten digits only"),
    ("n_real past the eval split", "", ["metrics.n_real=5000"],
     "metrics.n_real: 5000 real samples asked, but ring8/test has 2500"),
]


@pytest.mark.parametrize("needs, overrides, expected", [r[1:] for r in RUN_BAD],
                         ids=[r[0] for r in RUN_BAD])
def test_run_refuses_before_writing_anything(needs, overrides, expected, workdir, monkeypatch,
                                             capsys, request):
    why_not = {"ro_fs": _read_only_fs,
               "ro_dir": lambda: "root writes into read-only folders" if os.geteuid() == 0 else None,
               "pg": _postgres}.get(needs, lambda: None)()
    if why_not:
        pytest.skip(why_not)
    values = {"cwd": str(workdir)}
    if needs == "http_404":
        values["http_404"] = request.getfixturevalue("http_404")
    before = sorted(os.listdir(workdir))
    start = time.monotonic()
    code, out, err = gan_bench(monkeypatch, capsys, "run", str(SMOKE), "--plain", "--no-estimate",
                               *[f"--set={fill(o, values)}" for o in overrides])
    assert_one_line(code, out, err, fill(expected, values))
    assert time.monotonic() - start < 20  # one short connection attempt, no retries
    assert sorted(os.listdir(workdir)) == before  # no runs/, no lock file, no store
    assert not Path(RO_FS).exists()


def test_preflight_of_a_good_suite_passes_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite(SMOKE, [f"output_dir={tmp_path / 'runs' / 'smoke'}"])
    assert preflight.check_run(suite) is None
    assert os.listdir(tmp_path) == []


def test_preflight_reaches_a_real_postgresql(tmp_path):
    why_not = _postgres()
    if why_not:
        pytest.skip(why_not)
    suite = load_suite(SMOKE, [f"output_dir={tmp_path / 'out'}", f"storage={PG}/test"])
    assert preflight.check_run(suite) is None and not (tmp_path / "out").exists()


def test_unreachable_tracking_server_is_one_line_within_seconds(tmp_path):
    """The console script, as the audit ran it: minutes of urllib3 retries before the fix."""
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "gan_bench.cli", "run", str(SMOKE), "--plain",
                          "--no-estimate", "--set", "tracking_uri=http://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: tracking_uri: no server answers at http://127.0.0.1:1 within 5 s ([Errno 111] "
        "Connection refused)"]
    assert time.monotonic() - start < 60 and os.listdir(tmp_path) == []


# --- run and validate: suite files that YAML itself accepts ---------------------------------

SMOKE_TEXT = SMOKE.read_text()
# "billion laughs": nine levels of ten aliases each, 10**9 strings once expanded
BOMB = "  options:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    {b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
DEVICE_LINE = SMOKE_TEXT.splitlines().index("device: cpu") + 1
FILES_BAD = [  # (what, the suite file's text, the one line contains)
    ("alias bomb in dataset.options", SMOKE_TEXT.replace("  name: ring8", "  name: ring8\n" + BOMB, 1),
     "not valid YAML (aliases expand it to more than 100000 values (an alias bomb?)"),
    ("duplicate key", SMOKE_TEXT + "device: cuda\n",
     f"not valid YAML (line {DEVICE_LINE + 1}: duplicate key 'device' (first given at line "
     f"{DEVICE_LINE}))"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("text, expected", [r[1:] for r in FILES_BAD], ids=[r[0] for r in FILES_BAD])
def test_suite_files_yaml_accepts_are_refused(command, text, expected, workdir, monkeypatch,
                                              capsys):
    (workdir / "x.yaml").write_text(text)
    before = sorted(os.listdir(workdir))
    code, out, err = gan_bench(monkeypatch, capsys, command, "x.yaml", "--no-estimate")
    assert_one_line(code, out, err, f"x.yaml: {expected}")
    assert sorted(os.listdir(workdir)) == before


# --- report ---------------------------------------------------------------------------------

REPORT_BAD = [  # (what, arguments after `report`, runs/smoke/suite.json or None, the line has)
    ("--out is a file", [str(SMOKE), "--out", "afile"], None,
     "--out: {cwd}/afile is a file, not a folder"),
    ("--out below a file", [str(SMOKE), "--out", "afile/report"], None,
     "--out: {cwd}/afile is a file, so {cwd}/afile/report cannot be created below it"),
    ("corrupt suite.json", ["runs/smoke"], '{"name": "smo',
     "runs/smoke/suite.json: not a readable suite record (Unterminated string starting at: "
     "line 1 column 10"),
    ("suite.json holding a list", ["runs/smoke"], "[]",
     "runs/smoke/suite.json: the top level must be a mapping of keys (got a list)"),
]


@pytest.mark.parametrize("args, record, expected", [r[1:] for r in REPORT_BAD],
                         ids=[r[0] for r in REPORT_BAD])
def test_report_refuses_bad_input(args, record, expected, workdir, monkeypatch, capsys):
    if record is not None:
        (workdir / "runs" / "smoke").mkdir(parents=True)
        (workdir / "runs" / "smoke" / "suite.json").write_text(record)
    before = sorted(os.listdir(workdir))
    code, out, err = gan_bench(monkeypatch, capsys, "report", *args)
    assert_one_line(code, out, err, fill(expected, {"cwd": str(workdir)}))
    assert sorted(os.listdir(workdir)) == before  # no reports/ folder


# --- reference rows -------------------------------------------------------------------------

def test_protocol_differences_name_dtype_and_metric_parameters():
    """Issue 13: the reference rows' "differs" column left out dtype and the metric's params."""
    ours = {"metric": "kid", "extractor": "inception_tf", "n_real": 10000, "n_fake": 10000,
            "dtype": "float32", "seed": 0, "params": {"subset_size": 1000, "degree": 3},
            "versions": {"numpy": "2.4"}}
    assert protocol_differences(ours, {**ours, "versions": {"numpy": "2.5"}}) == []
    ref = {**ours, "dtype": "float64", "params": {"subset_size": 100, "degree": 3, "coef0": 1.0}}
    assert protocol_differences(ref, ours) == [
        "dtype float64 vs float32", "params.coef0 1.0 vs None", "params.subset_size 100 vs 1000"]
