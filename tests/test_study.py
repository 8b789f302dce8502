"""study.py without training: budget accounting, dead-worker recovery, seeds, finalists' order."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import optuna
import pytest

from gan_bench.stores import default_storage_url
from gan_bench.study import GanStudy, StudyCounts, study_name


def space():
    return {"lr_g": SimpleNamespace(low=1e-5, high=1e-3, log=True, choices=None),
            "lr_ratio": SimpleNamespace(low=0.1, high=10.0, log=True, choices=None),
            "k": SimpleNamespace(low=1, high=5, log=False, choices=None)}


def make(tmp_path, **kw):
    args = dict(name=study_name("s", "g"), storage_url=default_storage_url(tmp_path),
                search=space(), direction="minimize", sampler="tpe", seed=0, pruner="none")
    args.update(kw)
    return GanStudy(**args)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_params_follow_the_space_and_budget_counts_complete_plus_pruned(tmp_path):
    st = make(tmp_path)
    values = []
    for i in range(4):
        t = st.next_trial(budget=4)
        assert 1e-5 <= t.params["lr_g"] <= 1e-3 and 0.1 <= t.params["lr_ratio"] <= 10
        assert isinstance(t.params["k"], int) and 1 <= t.params["k"] <= 5
        if i == 1:
            st.prune(t)
        elif i == 2:
            st.fail(t, "diverged", {"failure_kind": "diverged"})
        else:
            st.complete(t, float(i))
            values.append(float(i))
    c = st.counts()
    assert (c.complete, c.pruned, c.failed, c.done) == (2, 1, 1, 3)
    last = st.next_trial(budget=4)  # the failed one does not count: one more is due
    st.complete(last, 10.0)
    assert st.next_trial(budget=4) is None
    assert st.failures() == 1
    assert [t.value for t in st.best(2)] == [0.0, 3.0]


def test_a_rerun_only_adds_what_is_missing(tmp_path):
    st = make(tmp_path)
    for v in (1.0, 2.0):
        st.complete(st.next_trial(budget=3), v)
    again = make(tmp_path)  # a new process, the same storage
    t = again.next_trial(budget=3)
    again.complete(t, 0.5)
    assert again.next_trial(budget=3) is None
    assert again.counts().done == 3 and again.best(1)[0].value == 0.5


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_resumed_study_proposes_new_configurations_and_a_fresh_one_repeats(tmp_path, sampler):
    """Issue 13: the seeded sampler restarted in each process and replayed trials 0, 1, ..."""
    def first(st, n):
        out = []
        for i in range(n):
            t = st.next_trial(budget=10)
            st.complete(t, float(i))
            out.append(t.params)
        return out

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = first(make(tmp_path / "a", sampler=sampler), 2)
    assert first(make(tmp_path / "b", sampler=sampler), 2) == a  # fresh runs: reproducible
    resumed = first(make(tmp_path / "a", sampler=sampler), 2)  # second invocation, same store
    assert all(p not in a for p in resumed)
    again = first(make(tmp_path / "a", sampler=sampler), 1)  # third: new again
    assert again[0] not in a + resumed
    resumed_b = first(make(tmp_path / "b", sampler=sampler), 2)
    assert resumed_b == resumed  # the resumed proposals are reproducible too


def test_dead_workers_trial_is_failed_and_its_params_retried(tmp_path):
    st = make(tmp_path)
    t = st.next_trial(budget=2)
    t.trial.set_user_attr("owner", f"{st.owner.rsplit(':', 1)[0]}:{dead_pid()}")  # same PID space
    t._heartbeat.set()
    other = make(tmp_path)
    assert other.recover() == [t.number]
    frozen = other.study.trials[t.number]
    assert frozen.state.name == "FAIL" and "worker died" in frozen.user_attrs["fail_reason"]
    retry = other.next_trial(budget=2)
    assert retry.params == t.params and retry.retry_of == t.number


def test_interrupted_trial_is_requeued_but_a_diverged_one_is_not(tmp_path):
    st = make(tmp_path)
    a = st.next_trial(budget=5)
    st.fail(a, "interrupted by the user", {"failure_kind": "interrupted"}, retry=True)
    b = st.next_trial(budget=5)
    assert b.params == a.params and b.retry_of == a.number
    st.fail(b, "diverged", {"failure_kind": "diverged"})
    c = st.next_trial(budget=5)
    assert c.retry_of is None
    assert st.failures() == 1  # interrupted trials do not count against max_failures


def test_worker_seeds_differ_and_a_collision_moves_the_seed(tmp_path):
    w0, w1 = make(tmp_path, worker=0), make(tmp_path, worker=1)
    assert w0.sampler_seed != w1.sampler_seed
    t = w0.next_trial(budget=5)
    t.trial.set_user_attr("owner", "elsewhere:1")  # a live worker on another host
    twin = make(tmp_path, worker=0)
    assert twin.sampler_seed != w0.sampler_seed


def test_surplus_trial_yields_when_the_budget_is_taken(tmp_path):
    st = make(tmp_path)
    first = st.next_trial(budget=1)
    # a second worker asks at the same moment the first one is already running
    second = st._ask()
    assert st._surplus(second, budget=1)
    frozen = st.study.trials[second.number]
    assert frozen.state.name == "FAIL" and frozen.user_attrs["surplus"] is True
    st.complete(first, 1.0)
    assert st.counts() == StudyCounts(complete=1)


def test_pruner_reports_by_evaluation_index(tmp_path):
    st = make(tmp_path, pruner="median", pruner_startup=1, n_warmup_evals=0)
    good = st.next_trial(budget=3)
    for v in (1.0, 0.5):
        assert not st.report(good, v)
    st.complete(good, 0.5)
    bad = st.next_trial(budget=3)
    assert st.report(bad, 50.0)  # worse than the median at evaluation 1
    st.prune(bad)
    assert st.study.trials[bad.number].intermediate_values == {1: 50.0}


@pytest.mark.parametrize("sampler", ["tpe", "random", "gp"])
def test_samplers_propose_in_range(tmp_path, sampler):
    st = make(tmp_path, sampler=sampler, n_startup_trials=2)
    for i in range(3):
        t = st.next_trial(budget=3)
        assert 1 <= t.params["k"] <= 5
        st.complete(t, float(i))
    assert isinstance(st.study.sampler, optuna.samplers.BaseSampler)


def test_each_gan_gets_its_own_sampler_seed_and_arms_of_one_gan_share_it():
    from gan_bench.study import gan_sampler_seed

    seeds = {g: gan_sampler_seed(0, g) for g in ("gan", "ns_gan", "lsgan", "hinge")}
    assert len(set(seeds.values())) == 4  # GANs never share start-up proposals
    assert gan_sampler_seed(0, "gan_control") == gan_sampler_seed(0, "gan_searched") == seeds["gan"]
    assert gan_sampler_seed(1, "gan") != seeds["gan"]  # the suite's seed still matters
    assert gan_sampler_seed(0, "_control") != seeds["gan"]  # a bare suffix is a name
    assert all(0 <= s < 2**31 for s in seeds.values())
    # known answer: sha256(b"0:gan")[:4] little-endian mod 2**31 (reproducible across versions)
    import hashlib
    want = int.from_bytes(hashlib.sha256(b"0:gan").digest()[:4], "little") % 2**31
    assert seeds["gan"] == want


def test_two_gans_of_one_suite_propose_different_first_settings(tmp_path):
    from gan_bench.study import gan_sampler_seed

    firsts = []
    for gan in ("gan", "ns_gan"):
        st = make(tmp_path, name=study_name("s", gan), sampler="random",
                  seed=gan_sampler_seed(0, gan))
        firsts.append(st.next_trial(budget=1).params)
    assert firsts[0] != firsts[1]
