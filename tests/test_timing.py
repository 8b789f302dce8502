"""The time ledger `gan-bench run` prints last: each second counted once, in the innermost phase."""

from __future__ import annotations

import threading

import pytest

from gan_bench import timing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    return fake


def test_nested_phases_count_each_second_once(clock: FakeClock) -> None:
    ledger = timing.Ledger()
    clock.now += 1.0  # before any phase: "other"
    with ledger.phase("training"):
        clock.now += 10.0
        with ledger.phase("tracking"):
            clock.now += 2.0
        clock.now += 5.0
        with ledger.phase("evaluation"):
            clock.now += 3.0
            with ledger.phase("tracking"):
                clock.now += 0.5
    clock.now += 4.0
    assert ledger.seconds == pytest.approx({"training": 15.0, "tracking": 2.5, "evaluation": 3.0})
    assert ledger.total() == pytest.approx(25.5)
    assert dict(ledger.breakdown())["other"] == pytest.approx(5.0)
    assert sum(s for _, s in ledger.breakdown()) == pytest.approx(ledger.total())
    assert [name for name, _ in ledger.breakdown()] == ["training", "evaluation", "tracking", "other"]


def test_a_phase_that_raises_is_still_charged(clock: FakeClock) -> None:
    ledger = timing.Ledger()
    with pytest.raises(RuntimeError), ledger.phase("report"):
        clock.now += 7.0
        raise RuntimeError("boom")
    clock.now += 1.0
    with ledger.phase("report"):
        clock.now += 1.0
    assert ledger.seconds == pytest.approx({"report": 8.0})


def test_other_threads_are_not_timed(clock: FakeClock) -> None:
    ledger = timing.Ledger()

    def beside() -> None:
        with ledger.phase("system metrics"):
            clock.now += 3.0

    thread = threading.Thread(target=beside)
    thread.start()
    thread.join()
    assert ledger.seconds == {}


def test_line_names_phases_with_shares(clock: FakeClock) -> None:
    ledger = timing.Ledger()
    with ledger.phase("training"):
        clock.now += 96.0
    with ledger.phase("tracking"):
        clock.now += 4.2
    with ledger.phase("never mind"):
        clock.now += 0.01  # under 0.05 s: not printed
    clock.now += 0.79
    assert ledger.line() == "time: training 96 s (95%), tracking 4.2 s (4%), other 0.8 s (1%); total 101 s"


def test_reset_starts_over(clock: FakeClock) -> None:
    ledger = timing.Ledger()
    with ledger.phase("setup"):
        clock.now += 5.0
    ledger.reset()
    clock.now += 2.0
    assert ledger.seconds == {}
    assert ledger.total() == pytest.approx(2.0)


def test_run_prints_where_its_time_went(tmp_path, monkeypatch, capsys):
    """`gan-bench run` ends with one line of phases that add up to its wall time."""
    import re

    from conftest import SMOKE_SUITE, TINY_SMOKE, cli_main

    monkeypatch.chdir(tmp_path)  # the report goes to ./reports/<suite>
    sets = [a for s in [f"output_dir={tmp_path / 'run'}", *TINY_SMOKE] for a in ("--set", s)]
    code, out, err = cli_main(monkeypatch, capsys, "run", str(SMOKE_SUITE), "--plain",
                              "--no-estimate", *sets)
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    assert line.startswith("time: "), out
    phases = dict(re.findall(r"([a-z' ]+) ([\d.]+) s \(\d+%\)", line.removeprefix("time: ")))
    phases = {name.strip(", "): float(s) for name, s in phases.items()}
    # a phase under 0.05 s is not printed: ring8's evaluations take milliseconds, and setup
    # does too once an earlier test has loaded the data in this process; training and the
    # MLflow writes of 4 runs never do
    for name in ("training", "tracking"):
        assert name in phases, (name, line)
    assert set(phases) <= {"setup", "training", "evaluation", "final metrics", "tracking",
                           "report", "other"}, line
    total = float(re.search(r"; total ([\d.]+) s$", line).group(1))
    assert 0 < phases["training"] < total
    # each printed value is rounded (to 0.1 s, or 1 s from 10 s on)
    assert sum(phases.values()) == pytest.approx(total, abs=0.06 * len(phases) + 0.5)
