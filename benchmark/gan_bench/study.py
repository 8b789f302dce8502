"""Optuna studies: one per (suite, GAN). The only module of gan-bench that imports optuna.

The runner drives a study through `GanStudy` with ask/tell, so one process can interleave
training, tracking and pruning without Optuna owning the loop:

- budget: `trials` counts COMPLETE + PRUNED trials across every run and every worker; a rerun
  only adds what is missing, and a worker stops asking once done + running trials reach it.
- dead workers: a RUNNING trial whose owner process is gone (same host and PID space, see
  procs.py), or whose heartbeat is older than the grace period (other hosts and containers), is
  marked FAIL and its parameters are enqueued again, so the budget is met with the same
  configurations. A worker whose trial was taken this way (it was judged dead wrongly, e.g.
  paused for longer than the grace period) gets TrialTaken and stops that trial.
- seeds: each GAN's study has its own sampler seed, derived from the suite's seed and the GAN's
  name without an arm suffix (`gan_sampler_seed`): GANs never share start-up proposals, while
  the two arms `<gan>_control` / `<gan>_searched` of one GAN draw from the same stream. Each
  worker's sampler seed is that seed `+ 10007 * worker`; a worker that finds another live
  worker using its seed moves to a seed derived from its pid (never two samplers in step); a
  study that already holds trials (a resumed or repeated run) derives the seed from (seed,
  worker, trials so far), so it never replays the configurations it already tried.
- finalists: each (trial, seed) finalist is claimed in the storage (`GanStudy.claim`, a row in
  the table `gan_bench_claims` with the key as primary key) before it trains, so two workers that
  reach the finalist stage at once never both train it; the database decides who wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import optuna
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from gan_bench.errors import TrialTaken
from gan_bench.procs import owner_dead_here, owner_token
from gan_bench.timing import LEDGER

if TYPE_CHECKING:
    from gan_bench.config.space import Range, Searched

__all__ = ["GanStudy", "TrialTicket", "study_name", "gan_sampler_seed", "make_sampler", "claim_worker_index",
           "migrate_storage",
           "make_pruner", "StudyCounts", "study_records", "param_importances"]

HEARTBEAT_S = int(os.environ.get("GAN_BENCH_HEARTBEAT_S", "20"))  # Optuna's own default is 60
GRACE_S = int(os.environ.get("GAN_BENCH_GRACE_S", str(HEARTBEAT_S * 6)))  # a few missed beats
INT_PARAMS = ("k", "batch_size")  # searched as integers
CLAIMS_TABLE = "gan_bench_claims"  # finalist claims, in the same database as the studies
# A claim whose owner (on another host) has started no run for this long is taken over: the
# claimer starts its MLflow run milliseconds after claiming, so it died in between.
CLAIM_STALE_S = float(os.environ.get("GAN_BENCH_CLAIM_STALE_S", "600"))

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def _quiet() -> Iterator[None]:
    """Heartbeats with ask/tell are what we want; Optuna warns that they are experimental and
    'supposed to be used with Study.optimize' — known, not actionable for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield


def study_name(suite: str, gan: str) -> str:
    """Deterministic name: reruns and other workers find the same study."""
    return f"{suite}/{gan}"


ARM_SUFFIXES = ("_control", "_searched")  # report/arms.py pairs GANs named this way


def gan_sampler_seed(seed: int, gan: str) -> int:
    """The sampler seed of GAN `gan`'s study in a suite seeded `seed`: sha256 of
    "<seed>:<gan without _control/_searched>" mod 2**31.

    One seed for every GAN made each GAN's search propose the same start-up settings (every
    searched arm of suites/mnist_cpu.yaml then chose lr_g 9e-4, lr_ratio 0.82, k 3): GANs are
    searched independently instead, and the two arms of one GAN share their stream (common
    random numbers where their search spaces overlap).
    """
    base = gan
    for suffix in ARM_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
    digest = hashlib.sha256(f"{int(seed)}:{base}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % 2**31


def make_sampler(name: str, seed: int, n_startup_trials: int | None) -> optuna.samplers.BaseSampler:
    kw: dict[str, Any] = {} if n_startup_trials is None else {"n_startup_trials": n_startup_trials}
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kw)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **kw)
    raise ValueError(f"unknown sampler {name!r} (known: tpe, random, gp)")


def make_pruner(name: str, n_startup_trials: int, n_warmup_evals: int,
                max_evals: int) -> optuna.pruners.BasePruner:
    """Steps reported to Optuna are evaluation indices 1..max_evals (not iterations), so the
    warm-up and Hyperband resources are counted in evaluations."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                           n_warmup_steps=n_warmup_evals)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, n_warmup_evals),
                                              max_resource=max(1, max_evals))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r} (known: median, hyperband, none)")


def _distribution(name: str, spec: Searched) -> optuna.distributions.BaseDistribution:
    """A search-space entry (object with low/high/log or choices) -> Optuna distribution."""
    choices = getattr(spec, "choices", None)
    if choices is not None:
        return CategoricalDistribution(list(choices))
    interval = cast("Range", spec)  # no choices: a Range
    low, high, log = interval.low, interval.high, bool(getattr(interval, "log", False))
    if name in INT_PARAMS:
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


@dataclass
class StudyCounts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def done(self) -> int:
        return self.complete + self.pruned


@dataclass
class TrialTicket:
    """One asked trial: its number, sampled params and the Optuna handle."""

    number: int
    params: dict[str, Any]
    trial: optuna.trial.Trial
    retry_of: int | None = None
    evals: int = 0
    _heartbeat: threading.Event | None = field(default=None, repr=False)


class GanStudy:
    """One GAN's study: ask configurations, report evaluations, tell outcomes."""

    def __init__(self, *, name: str, storage_url: str, search: dict[str, Searched], direction: str,
                 sampler: str = "tpe", seed: int = 0, n_startup_trials: int | None = None,
                 pruner: str = "median", pruner_startup: int = 3, n_warmup_evals: int = 1,
                 max_evals: int = 1, worker: int = 0) -> None:
        self.name = name
        self.owner = owner_token()
        with _quiet():
            self.storage = optuna.storages.RDBStorage(
                storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=self._requeue,
                engine_kwargs=_engine_kwargs(storage_url))
        self.distributions = {k: _distribution(k, v) for k, v in search.items()}
        self.base_seed, self.worker = int(seed), int(worker)
        self.sampler_seed = self.base_seed + 10007 * self.worker
        self._sampler_args = (sampler, n_startup_trials)
        self.study = optuna.create_study(
            study_name=name, storage=self.storage,
            direction=cast("Literal['minimize', 'maximize']", direction),  # the runner's two values
            load_if_exists=True,
            sampler=make_sampler(sampler, self.sampler_seed, n_startup_trials),
            pruner=make_pruner(pruner, pruner_startup, n_warmup_evals, max_evals))
        self.direction = direction
        self._reseed_if_resumed()
        self._avoid_seed_collision()

    def _reseed_if_resumed(self) -> None:
        """A seeded sampler restarts its random stream in every process, so a resumed study (or a
        second invocation) would propose the very configurations it already tried. When the
        study already holds trials, the seed is derived from (seed, worker, number of trials):
        a fresh run stays reproducible, a resumed one proposes new settings (reproducibly too)."""
        n = len(self.trials())
        if n:
            digest = hashlib.sha256(f"{self.base_seed}:{self.worker}:{n}".encode()).digest()
            self.sampler_seed = int.from_bytes(digest[:4], "little") % (2**31 - 1)
            name, n_startup = self._sampler_args
            self.study.sampler = make_sampler(name, self.sampler_seed, n_startup)

    # ------------------------------------------------------------------ bookkeeping
    def close(self) -> None:
        """Close this study's database connections (the runner is done with the GAN); the
        study stays in the storage, and using this object again reconnects."""
        self.storage.engine.dispose()

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def counts(self) -> StudyCounts:
        c = StudyCounts()
        for t in self.trials():
            if t.state == TrialState.COMPLETE:
                c.complete += 1
            elif t.state == TrialState.PRUNED:
                c.pruned += 1
            elif t.state == TrialState.FAIL and not t.user_attrs.get("surplus"):
                c.failed += 1
            elif t.state == TrialState.RUNNING:
                c.running += 1
            elif t.state == TrialState.WAITING:
                c.waiting += 1
        return c

    def recover(self) -> list[int]:
        """Fail RUNNING trials of dead workers (same host: pid gone; elsewhere: stale heartbeat)
        and enqueue their parameters again. Returns the failed trial numbers."""
        failed = []
        for t in self.trials((TrialState.RUNNING,)):
            if owner_dead_here(t.user_attrs.get("owner")):
                if self._fail_quietly(t._trial_id, "worker died (process gone)"):
                    self._requeue(self.study, t)
                    failed.append(t.number)
        before = {t.number for t in self.trials((TrialState.FAIL,))}
        with _quiet():
            optuna.storages.fail_stale_trials(self.study)
        failed += [t.number for t in self.trials((TrialState.FAIL,)) if t.number not in before]
        return failed

    def _fail_quietly(self, trial_id: int, reason: str) -> bool:
        try:
            self.storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            return self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another worker got there first

    def _requeue(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get("surplus") or not trial.params:
            return
        origin = trial.user_attrs.get("retry_of", trial.number)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": origin})

    def _avoid_seed_collision(self) -> None:
        """Another live worker with this sampler seed would propose the same configurations."""
        for t in self.trials((TrialState.RUNNING,)):
            if (t.user_attrs.get("sampler_seed") == self.sampler_seed
                    and t.user_attrs.get("owner") != self.owner):
                digest = hashlib.sha256(f"{self.base_seed}:{self.owner}".encode()).digest()
                self.sampler_seed = int.from_bytes(digest[:4], "little") % (2**31 - 1)
                name, n_startup = self._sampler_args
                self.study.sampler = make_sampler(name, self.sampler_seed, n_startup)
                return

    # ------------------------------------------------------------------ ask / report / tell
    def next_trial(self, budget: int, poll_s: float = 2.0) -> TrialTicket | None:
        """The next trial to train, or None when the budget is met (waiting while other
        workers' running trials could still complete it)."""
        while True:
            self.recover()
            c = self.counts()
            if c.done >= budget:
                return None
            if c.done + c.running >= budget and c.waiting == 0:
                with LEDGER.phase("waiting for other workers"):
                    time.sleep(poll_s)  # others may finish the budget; if one fails we take over
                continue
            ticket = self._ask()
            if self._surplus(ticket, budget):
                continue
            return ticket

    def _ask(self) -> TrialTicket:
        self._avoid_seed_collision()
        with _quiet():
            trial = self.study.ask(fixed_distributions=self.distributions)
        trial.set_user_attr("owner", self.owner)
        trial.set_user_attr("sampler_seed", self.sampler_seed)
        ticket = TrialTicket(trial.number, dict(trial.params), trial,
                             retry_of=trial.user_attrs.get("retry_of"))
        ticket._heartbeat = self._start_heartbeat(trial)
        return ticket

    def _surplus(self, ticket: TrialTicket, budget: int) -> bool:
        """Two workers that asked at the same moment may overshoot; the later trial yields."""
        ahead = [t for t in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
                 if t.number < ticket.number]
        if len(ahead) < budget:
            return False
        ticket.trial.set_user_attr("surplus", True)
        self._finish(ticket, state=TrialState.FAIL, reason="surplus: budget already taken by "
                                                            "other workers' trials")
        return True

    def _start_heartbeat(self, trial: optuna.trial.Trial) -> threading.Event:
        stop = threading.Event()
        trial_id = trial._trial_id

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a lost beat only risks a spurious retry, never data
                    pass

        self.storage.record_heartbeat(trial_id)
        threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True).start()
        return stop

    def report(self, ticket: TrialTicket, value: float) -> bool:
        """Report one evaluation; True when the pruner says stop. TrialTaken when another
        worker has failed the trial in the meantime (it judged this process dead)."""
        ticket.evals += 1
        try:
            ticket.trial.report(float(value), ticket.evals)
            return bool(ticket.trial.should_prune())
        except optuna.exceptions.UpdateFinishedTrialError:
            raise self._taken(ticket) from None

    def _taken(self, ticket: TrialTicket) -> TrialTaken:
        if ticket._heartbeat is not None:
            ticket._heartbeat.set()
        frozen = self.storage.get_trial(ticket.trial._trial_id)
        why = frozen.user_attrs.get("fail_reason") or frozen.state.name
        return TrialTaken(f"trial {ticket.number} of {self.name} was ended by another worker "
                          f"({why}); its parameters were queued again")

    def complete(self, ticket: TrialTicket, value: float, attrs: dict[str, Any] | None = None) -> None:
        self._finish(ticket, values=float(value), attrs=attrs)

    def prune(self, ticket: TrialTicket, attrs: dict[str, Any] | None = None) -> None:
        self._finish(ticket, state=TrialState.PRUNED, attrs=attrs)

    def fail(self, ticket: TrialTicket, reason: str, attrs: dict[str, Any] | None = None,
             retry: bool = False) -> None:
        """Record FAIL with its reason; `retry` enqueues the same parameters again (a trial that
        was interrupted, not one that diverged: that one would diverge again). A retried trial
        that another worker already took is left as it is (the taker queued it again)."""
        try:
            self._finish(ticket, state=TrialState.FAIL, reason=reason, attrs=attrs)
        except TrialTaken:
            if retry:
                return
            raise
        if retry:
            self._requeue(self.study, self.study._storage.get_trial(ticket.trial._trial_id))

    def failures(self, kinds: tuple[str, ...] = ("diverged", "error", "oom")) -> int:
        """FAILED trials that count against budget.max_failures (not interrupted or surplus)."""
        return sum(1 for t in self.trials((TrialState.FAIL,))
                   if t.user_attrs.get("failure_kind") in kinds)

    def _finish(self, ticket: TrialTicket, *, values: float | None = None,
                state: TrialState | None = None, reason: str | None = None,
                attrs: dict[str, Any] | None = None) -> None:
        if ticket._heartbeat is not None:
            ticket._heartbeat.set()
        if self.storage.get_trial(ticket.trial._trial_id).state != TrialState.RUNNING:
            raise self._taken(ticket)
        try:
            for key, value in {**(attrs or {}), **({"fail_reason": reason} if reason else {})}.items():
                ticket.trial.set_user_attr(key, value)
            self.study.tell(ticket.trial, values, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:  # taken between the check and here
            raise self._taken(ticket) from None

    # ------------------------------------------------------------------ finalist claims
    def claim(self, key: str) -> bool:
        """Claim `key` (e.g. "suite/gan/final/trial-3/seed-1000#0") for this process; True when
        it is ours. An INSERT on the key's primary key is atomic in every SQL database, so of
        two workers claiming at once exactly one wins. A claim held by a dead process (this
        host: pid gone; another host: older than CLAIM_STALE_S, and the caller found no run
        for this key and attempt) is taken over with a compare-and-set UPDATE."""
        table = _claims_table(self.storage.engine)
        now = time.time()
        try:
            with self.storage.engine.begin() as conn:
                conn.execute(table.insert().values(key=key, owner=self.owner, claimed_at=now))
            return True
        except sa.exc.IntegrityError:
            pass
        with self.storage.engine.begin() as conn:
            row = conn.execute(sa.select(table.c.owner, table.c.claimed_at)
                               .where(table.c.key == key)).first()
            if row is None:  # released in between: try once more
                return self.claim(key)
            if row.owner == self.owner:
                return True
            stale = now - float(row.claimed_at) > CLAIM_STALE_S
            if not (owner_dead_here(row.owner) or stale):
                return False
            taken = conn.execute(table.update()
                                 .where(table.c.key == key, table.c.owner == row.owner)
                                 .values(owner=self.owner, claimed_at=now))
            return taken.rowcount == 1

    # ------------------------------------------------------------------ results
    def best(self, top: int) -> list[optuna.trial.FrozenTrial]:
        """The `top` completed trials, best first (distinct parameter sets)."""
        done = [t for t in self.trials((TrialState.COMPLETE,)) if t.value is not None]
        done.sort(key=lambda t: cast(float, t.value), reverse=self.direction == "maximize")
        out, seen = [], set()
        for t in done:
            key = tuple(sorted(t.params.items()))
            if key not in seen:
                seen.add(key)
                out.append(t)
        return out[:top]


_CLAIMS: dict[str, sa.Table] = {}  # engine URL -> table, created once per process


def migrate_storage(storage_url: str) -> None:
    """Create (or upgrade) the Optuna tables and gan-bench's claims table in `storage_url`:
    a deployment's one-shot step, so that N workers starting at once do not race to."""
    with _quiet():
        storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=_engine_kwargs(storage_url))
    try:
        _claims_table(storage.engine)
    finally:
        storage.engine.dispose()


def claim_worker_index(storage_url: str, scope: str) -> int:
    """A worker index no other process of `scope` (a suite) has in this storage, taken for
    good: `--worker auto` for workers started alike (docker compose --scale, a cluster without
    an array index). The index offsets the sampler seed, so no two workers share a sampler
    stream; indexes of workers that ended are not reused (only distinct seeds matter)."""
    engine = sa.create_engine(storage_url, **_oneshot_engine_kwargs(storage_url))
    try:
        table = _claims_table(engine)
        prefix = f"{scope}/worker#"
        with engine.connect() as conn:
            taken = [key for (key,) in conn.execute(sa.select(table.c.key)
                                                    .where(table.c.key.startswith(prefix)))]
        index = max((int(k[len(prefix):]) for k in taken if k[len(prefix):].isdigit()),
                    default=-1) + 1
        while True:  # another worker may insert the same index between the read and here
            try:
                with engine.begin() as conn:
                    conn.execute(table.insert().values(key=f"{prefix}{index}", owner=owner_token(),
                                                       claimed_at=time.time()))
                return index
            except sa.exc.IntegrityError:
                index += 1
    finally:
        engine.dispose()


def _claims_table(engine: sa.engine.Engine) -> sa.Table:
    """The claims table, created on first use (a race between two creators is harmless)."""
    url = str(engine.url)
    if url not in _CLAIMS:
        meta = sa.MetaData()
        table = sa.Table(CLAIMS_TABLE, meta,
                         sa.Column("key", sa.String(512), primary_key=True),
                         sa.Column("owner", sa.String(255), nullable=False),
                         sa.Column("claimed_at", sa.Float, nullable=False))
        try:
            meta.create_all(engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another process created it between the check and CREATE
            if not sa.inspect(engine).has_table(CLAIMS_TABLE):
                raise
        _CLAIMS[url] = table
    return _CLAIMS[url]


# A worker's connections to a server database: one kept open for the main thread, up to two
# more while a trial's heartbeat thread and the main thread talk at once (SQLAlchemy's default,
# 5 kept + 10 overflow per engine, let 8 workers hold 42 connections of PostgreSQL's 100;
# benchmark/scripts/pg_connections.py measures it, docs/scaling.md quotes it).
SERVER_POOL = {"pool_size": 1, "max_overflow": 2, "pool_recycle": 300}


def _oneshot_engine_kwargs(url: str) -> dict[str, Any]:
    """For a short read or claim: no pool (the connection closes when done), sqlite's wait."""
    return {"poolclass": sa.pool.NullPool,
            **{k: v for k, v in _engine_kwargs(url).items() if k == "connect_args"}}


def _engine_kwargs(url: str) -> dict[str, Any]:
    # sqlite: wait for the other writer instead of failing at once ("database is locked")
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, **SERVER_POOL}


# ----------------------------------------------------------------------------- reading (reports)

@contextlib.contextmanager
def _study_or_none(storage_url: str, name: str) -> Iterator[optuna.Study | None]:
    """The study `name` for reading (None when there is none); its connections are closed on
    exit (a reader holds none afterwards: N workers read every study at start)."""
    with _quiet():
        storage = optuna.storages.RDBStorage(storage_url,
                                             engine_kwargs=_oneshot_engine_kwargs(storage_url))
    try:
        try:
            study: optuna.Study | None = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # no such study in the storage
            study = None
        yield study
    finally:
        storage.engine.dispose()


def study_records(storage_url: str, name: str) -> list[dict[str, Any]]:
    """Every trial of study `name` as a plain dict, surplus trials left out; [] if no study.

    Keys: number, state ("complete" | "pruned" | "failed" | "running" | "waiting"), value
    (float or None), params, user_attrs, duration_s (start to end, None while running).
    """
    with _study_or_none(storage_url, name) as study:
        trials = [] if study is None else study.get_trials(deepcopy=False)
    out = []
    for t in trials:
        if t.user_attrs.get("surplus"):
            continue
        state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
                 TrialState.FAIL: "failed", TrialState.RUNNING: "running"}.get(t.state, "waiting")
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        out.append({"number": t.number, "state": state, "value": t.value, "params": dict(t.params),
                    "user_attrs": dict(t.user_attrs), "duration_s": duration})
    return out


def param_importances(storage_url: str, name: str, seed: int = 0) -> dict[str, float] | None:
    """Optuna's fANOVA importances {param: share in [0, 1]} of study `name` (seeded).

    None when the study has fewer than 2 completed trials, none of its parameters varied or
    every trial reached the same objective (e.g. all 8 modes captured).
    """
    with _study_or_none(storage_url, name) as study:
        return None if study is None else _importances(study, seed)


def _importances(study: optuna.Study, seed: int) -> dict[str, float] | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = {k for k in done[0].params if len({t.params.get(k) for t in done}) > 1} if done else set()
    if len(done) < 2 or not varied or len({t.value for t in done}) < 2:
        return None  # fANOVA needs a varied parameter and a varied objective
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        imp = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                      params=sorted(varied))
    except RuntimeError:  # "zero total variance in all trees": nothing to attribute
        return None
    return {k: float(v) for k, v in sorted(imp.items())}
