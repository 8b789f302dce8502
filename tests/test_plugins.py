"""Your own GAN without forking (issue 25): the example plugin under benchmark/examples/my_gan
runs end to end both ways (an installed entry point, and package.module:callable references),
its entries pass the registry contract tests, and a bad plugin is one line and exit 2 at
`validate`.

"Installed" is simulated the way an installation looks to Python: a `*.dist-info` folder with
the example's entry point next to the package on PYTHONPATH (what `pip install -e` leaves, minus
the copy; the README's `pip install -e` was also run by hand, see the session note).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "benchmark" / "examples" / "my_gan"
BIN = Path(sys.executable).parent


def _installed(tmp_path: Path, entry: str = "my_gan.plugin", name: str = "gan-bench-my-gan") -> Path:
    """A folder that makes the example look installed (a dist-info with its entry point)."""
    site = tmp_path / "site"
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[gan_bench.plugins]\nmy_gan = {entry}\n")
    return site


def _gan_bench(tmp_path: Path, *args: str, paths: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    return subprocess.run([str(BIN / "gan-bench"), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)


TINY = ["--set", "budget.iterations=40", "--set", "budget.eval_every=20", "--set", "finalists.seeds=1",
        "--plain", "--no-estimate"]


def test_an_installed_plugin_is_listed_and_benchmarked(tmp_path):
    site = _installed(tmp_path)
    listed = _gan_bench(tmp_path, "list", "architectures", "--json", paths=(site, EXAMPLE))
    assert listed.returncode == 0, listed.stderr
    entries = {a["name"]: a for a in json.loads(listed.stdout)["architectures"]}
    assert entries["res_mlp"]["source"] == "plugin gan-bench-my-gan (my_gan.plugin)"
    assert entries["dcgan"]["source"] == "built-in"
    run = _gan_bench(tmp_path, "run", str(EXAMPLE / "suite.yaml"), *TINY, paths=(site, EXAMPLE))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    board = (tmp_path / "reports" / "my_gan_demo" / "leaderboard.md").read_text()
    assert "res_mlp_soft_hinge" in board and "res_mlp / soft_hinge / none" in board


def test_a_suite_names_its_own_components_by_reference(tmp_path):
    """No installation: the package on PYTHONPATH and `package.module:callable` in the suite."""
    run = _gan_bench(tmp_path, "run", str(EXAMPLE / "suite_references.yaml"), *TINY, paths=(EXAMPLE,))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    board = (tmp_path / "reports" / "my_gan_references" / "leaderboard.md").read_text()
    assert "my_gan.nets:build / my_gan.losses:soft_hinge / none" in board


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path):
    site = _installed(tmp_path, entry="my_gan.no_such_module", name="broken-plugin")
    res = _gan_bench(tmp_path, "validate", str(ROOT / "suites" / "smoke.yaml"), "--no-estimate",
                     paths=(site, EXAMPLE))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert lines[0].startswith("error: plugin 'my_gan' (my_gan.no_such_module, entry point group "
                               "gan_bench.plugins) cannot be loaded: ModuleNotFoundError")


@pytest.mark.parametrize("code, field, message", [
    ("def build(shape, opts):\n    return 1, 2\n", "arch",
     "the builder must return (Generator, Discriminator) of gan_bench.models.base"),
    ("from my_gan.nets import build as _b\n"
     "def build(shape, opts):\n    g, d = _b((3,), opts)\n    return g, d\n", "arch",
     "G gives samples of shape (2, 3), the data are (N, (2,))"),
    ("def build(shape):\n    pass\n", "arch", "raised TypeError"),
    ("def loss(r, f):\n    return r.mean()\n", "loss", "not a gan_bench.losses.LossOutput"),
    ("x = 1\n", "arch", "has no 'nope'"),
])
def test_a_reference_that_breaks_the_contract_is_one_line_at_validate(tmp_path, code, field, message):
    pkg = tmp_path / "bad"
    (pkg / "badgan").mkdir(parents=True)
    (pkg / "badgan" / "__init__.py").write_text(code)
    name = {"arch": "build", "loss": "loss"}[field] if "nope" not in message else "nope"
    gan = ({"arch": f"badgan:{name}", "loss": "hinge"} if field == "arch"
           else {"arch": "toy_mlp", "loss": f"badgan:{name}"})
    spec = json.dumps([{"name": "bad", **gan}])
    res = _gan_bench(tmp_path, "validate", str(ROOT / "suites" / "smoke.yaml"), "--no-estimate",
                     "--set", f"gans={spec}", paths=(pkg, EXAMPLE))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: gans[0].{field}: "), res.stderr
    assert message in lines[0] and "Traceback" not in res.stderr


@pytest.fixture
def example_entries(monkeypatch):
    """The example's components registered in this process, by reference."""
    from gan_bench.plugins import resolve_reference
    from gan_bench.registry import ARCHITECTURES, LOSSES

    monkeypatch.syspath_prepend(str(EXAMPLE))
    return (resolve_reference(ARCHITECTURES, "my_gan.nets:build"),
            resolve_reference(LOSSES, "my_gan.losses:soft_hinge"))


@pytest.mark.parametrize("penalty", ["none", "gradient_penalty"])
def test_the_registry_contract_holds_for_the_example_entries(example_entries, penalty):
    """tests/test_trainer.py's contract (one D and one G step: finite, each net moves, the other
    not) and one packed step, over the plugin's architecture and loss."""
    from test_trainer import test_contract_one_d_and_one_g_step

    arch, loss = example_entries
    test_contract_one_d_and_one_g_step(arch, loss, penalty)
    test_contract_one_d_and_one_g_step(arch, "hinge", penalty)
    test_contract_one_d_and_one_g_step("toy_mlp", loss, penalty)
