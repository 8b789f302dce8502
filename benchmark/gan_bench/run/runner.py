"""`gan-bench run`: for every GAN of a suite, an Optuna search, then the finalists.

The runner owns the order of things and nothing else: training is the Trainer's, metrics the
Evaluator's, Optuna lives in study.py and MLflow in tracking.py. Everything it records is
written as it happens, so a crash or a kill loses at most the trials in flight, and running the
same command again continues where it stopped (see study.py for the budget rules).

Every trial, a search trial or a finalist, alone or packed with others of its GAN, is a Job
and goes through one path: `_train` (one Trainer for the jobs, a TrialMonitor each) and one
settle step per job (`_settle`: done, failed, taken by another worker, or aborted).

Seeds: plan.py (search trial n trains with seed n; finalists with FINALIST_SEED0, +1, ...).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch

from gan_bench import interrupts, stores, views
from gan_bench.cache import atomic_write_json, sha256_file
from gan_bench.devices import resolve_device
from gan_bench.errors import StoreFailure, TrialTaken, UserInputError
from gan_bench.keys import KEY_TAG, finalist_key, finalist_key_problem
from gan_bench.plan import FINALIST_SEED0, SHA_TAGS, gan_trials, suite_evaluator, train_data, trial_config
from gan_bench.progress import Progress_
from gan_bench.run.describe import (
    describe_hardware,
    is_out_of_memory,
    name_params,
    protocol_line,
    spec_params,
    train_params,
)
from gan_bench.run.monitor import TAKEN, Scorer, TrialMonitor, sample_picture
from gan_bench.run.summary import GanSummary
from gan_bench.stores import redact, sqlite_path, store_failure_line
from gan_bench.timing import LEDGER
from gan_bench.train import TrainConfig, Trainer, TrainingDiverged, TrainResult, Trial
from gan_bench.train.packed import pack_problems
from gan_bench.train.trainer import auto_pack_size

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from gan_bench.config import ResolvedGan, Suite
    from gan_bench.data.base import ArrayDataset
    from gan_bench.estimate import SuiteClock
    from gan_bench.metrics.evaluator import Evaluator
    from gan_bench.metrics.records import MetricRecord
    from gan_bench.study import GanStudy, TrialTicket
    from gan_bench.tracking import RunHandle, Tracker

__all__ = ["Runner", "SuiteOutcome", "GanOutcome", "Job"]

SYSTEM_METRICS_S = 5.0  # MLflow system metrics sampling while a run trains


@dataclass
class GanOutcome:
    name: str
    study: str
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any]
    finalists: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SuiteOutcome:
    suite: str
    output_dir: Path
    tracking_uri: str
    storage_url: str
    objective: str
    direction: str
    gans: list[GanOutcome] = field(default_factory=list)
    new_trials: int = 0
    new_finalists: int = 0
    stopped: str = ""  # why the run stopped early ("" when it finished its budget)


@dataclass
class Job:
    """One trial to train: a search trial (`ticket`) or a finalist (`seed` of trial `number`'s
    setting, its finalist `key`). `run` is its MLflow run, started when the job is made."""

    study: GanStudy
    cfg: TrainConfig
    run: RunHandle
    number: int  # the Optuna trial (a finalist's: the trial whose setting it retrains)
    ticket: TrialTicket | None = None
    seed: int | None = None
    stage: str = field(init=False)

    def __post_init__(self) -> None:
        self.stage = "search" if self.ticket is not None else "final"

    @property
    def label(self) -> str:
        return f"finalist seed {self.seed}" if self.ticket is None else f"trial {self.number}"


class Runner:
    """Runs one suite in this process (`worker` distinguishes parallel processes' samplers).

    estimate: time a few iterations of each GAN before training (estimate.py), print the cost
    and start the suite's ETA from it; without it the ETA starts once a trial has finished.
    """

    def __init__(self, suite: Suite, *, worker: int | Literal["auto"] = 0,
                 progress: Progress_ | None = None, estimate: bool = False,
                 command: str = "") -> None:
        self.suite, self._worker = suite, worker
        self.command = command or f"Runner({suite.name!r}) from Python"  # recorded; reports print it
        self.progress = progress or Progress_()
        self.out = Path(suite.resolved_output_dir())
        self.storage_url = stores.storage_url(suite, self.out)
        self.tracking_uri = stores.tracking_uri(suite, self.out)
        self.device = resolve_device(suite.device)
        minutes = suite.budget.timeout_minutes
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes
        self.base_seed = 0  # search trial n trains with seed n
        self.objective = suite.metrics.objective
        self._pack_sizes: dict[str, int] = {}  # GAN name -> trials trained together
        self.estimate = estimate
        self.clock: SuiteClock | None = None  # made once the training data is loaded

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        from gan_bench.tracking import Tracker, git_commit, git_sha  # deferred: imports mlflow

        s = self.suite
        self._check_store_files()
        self.data: ArrayDataset = train_data(s)  # first: missing data must not leave a run dir
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "suite.json", s.to_dict())
        self.evaluator: Evaluator = suite_evaluator(s, self.device)
        # the record the search optimises: metrics.objective_record, else the headline
        self.objective_key = self.evaluator.objective_key(self.objective, s.metrics.objective_record)
        self.direction = "maximize" if self.evaluator.higher_is_better(self.objective_key) else "minimize"
        self.worker = self._worker_index()
        self.git_sha = git_sha()
        self.hardware = describe_hardware(self.device)
        metrics = list(dict.fromkeys([self.objective, *s.metrics.curves]))
        # objective + curves at every evaluation (never pruned on the curves)
        self.scorer = Scorer(self.evaluator, metrics, self.objective_key, s.metrics.n_fake_search)
        # artifacts: <db folder>/mlartifacts for a local store, the server's own store for http
        self.tracker: Tracker = Tracker(
            self.tracking_uri, s.name, tags={"suite": s.name, "dataset": s.dataset.name,
                                             "objective": self.objective_key,
                                             "direction": self.direction})
        views.describe(self.tracker, s, self.command)
        self.datasets = views.dataset_inputs(s, self.data)
        self.source_tags = {"mlflow.source.name": self.command, "mlflow.source.type": "LOCAL",
                            "mlflow.user": views.user()}
        commit = git_commit()
        if commit:
            self.source_tags["mlflow.source.git.commit"] = commit
        keys = {k for m in dict.fromkeys([self.objective, *s.metrics.final])
                for k in self.evaluator.records(m)}
        self.summary = GanSummary(self.tracker, s.name, self.objective_key, keys,
                                  self.direction == "maximize", self.progress.message)
        closed = self.tracker.close_orphans()
        if closed:
            self.progress.message(f"marked {closed} MLflow run(s) of dead processes FAILED (orphaned)")

    def _worker_index(self) -> int:
        """`worker`, or for "auto" the next index no other worker of this suite holds in the
        Optuna storage (each index offsets the sampler seeds: no two workers in step)."""
        if self._worker != "auto":
            return self._worker
        from gan_bench.study import claim_worker_index  # deferred: imports optuna

        index = claim_worker_index(self.storage_url, self.suite.name)
        self.progress.message(f"worker index {index} (--worker auto)")
        return index

    def _check_store_files(self) -> None:
        """Refuse a local store that is an empty (0-byte) file while the other store holds runs:
        the search would silently start over next to the old finalists (or the reverse)."""
        files = {"Optuna storage": sqlite_path(self.storage_url),
                 "MLflow tracking store": sqlite_path(self.tracking_uri)}
        sizes = {k: p.stat().st_size if p is not None and p.is_file() else None
                 for k, p in files.items()}
        for (label, size), (other, other_size) in zip(sizes.items(), reversed(sizes.items())):
            if size == 0 and other_size:
                raise UserInputError(
                    f"{files[label]}: the {label} is an empty (0-byte) file while the {other} "
                    f"{files[other]} holds runs; restore it from a copy, or use a new output_dir "
                    "(nothing was run)")

    def _check_store_contents(self, gan: ResolvedGan, records: list[dict[str, Any]],
                              searches: int) -> None:
        """The same check on what the stores hold: trials in one and none in the other."""
        trials = sum(r["state"] in ("complete", "pruned") for r in records)
        if searches and not records:
            raise UserInputError(
                f"{redact(self.storage_url)}: the Optuna storage holds no trials of {gan.name}, "
                f"but MLflow holds {searches} search run(s) of it: the Optuna store was emptied or "
                "replaced; restore it, or use a new output_dir (nothing was run)")
        if trials and not searches:
            raise UserInputError(
                f"{redact(self.tracking_uri)}: MLflow holds no search runs of {gan.name}, but "
                f"the Optuna storage holds {trials} finished trial(s) of it: the "
                "MLflow store was emptied or replaced; restore it, or use a new output_dir "
                "(nothing was run)")

    def _check_finalist_keys(self, gan: ResolvedGan, finals: list[dict[str, Any]]) -> None:
        """A finished finalist whose key contradicts its own seed or trial: the finalist it
        really is would be trained again and the one its key names skipped."""
        from gan_bench.study import study_name  # deferred: imports optuna

        for run in finals:
            problem = finalist_key_problem(run, study_name(self.suite.name, gan.name))
            if problem is not None:
                raise UserInputError(f"{problem}; nothing was run")

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    # ------------------------------------------------------------------ the suite
    def run(self) -> SuiteOutcome:
        """Run the suite. A store that fails on the way (a lost database connection, a full
        disk) is StoreFailure, one line that names it: what was recorded stays, and running
        the same command again resumes."""
        try:
            return self._run()
        except Exception as exc:
            line = store_failure_line(exc, self.storage_url, self.tracking_uri, self.out)
            if line is None:
                raise
            raise StoreFailure(line) from exc

    def _run(self) -> SuiteOutcome:
        with LEDGER.phase("setup"):
            self._setup()
        outcome = SuiteOutcome(self.suite.name, self.out, self.tracking_uri, self.storage_url,
                               self.objective_key, self.direction)
        gans = self.suite.resolved_gans()
        self._start_clock(gans)
        self.progress.suite_start(self.suite.name, len(gans))
        for gan in gans:
            interrupts.check()
            outcome.gans.append(self._run_gan(gan, outcome))
            self.progress.gan_end(gan.name)
            if self._out_of_time():
                outcome.stopped = f"wall-clock cap of {self.suite.budget.timeout_minutes} min reached"
                break
        return outcome

    def _start_clock(self, gans: list[ResolvedGan]) -> None:
        """Print the suite's cost (timed when `estimate`) and start its ETA from the runs left."""
        from gan_bench.estimate import SuiteClock, count_suite, estimate_suite, format_estimate
        from gan_bench.study import study_name, study_records  # deferred: imports optuna

        self.clock = clock = SuiteClock(count_suite(self.suite, len(self.data)))
        finals = self.tracker.find_runs("tags.stage = 'final' and attributes.status = 'FINISHED'")
        searches = self.tracker.find_runs("tags.stage = 'search'")
        for gan in gans:
            records = study_records(self.storage_url, study_name(self.suite.name, gan.name))
            self._check_store_contents(gan, records,
                                       sum(r["tags"].get("gan") == gan.name for r in searches))
            self._check_finalist_keys(gan, [r for r in finals if r["tags"].get("gan") == gan.name])
            clock.resume(gan.name, sum(r["state"] in ("complete", "pruned") for r in records),
                         sum(r["tags"].get("gan") == gan.name for r in finals))
        timed = self.estimate and clock.runs_left() > 0
        with LEDGER.phase("estimate"):
            est = estimate_suite(self.suite, data=self.data, evaluator=self.evaluator, timed=timed)
        if not timed:
            est.untimed = ("every run is already done" if self.estimate
                           else "--no-estimate; the ETA starts after the first finished run")
        for line in format_estimate(est):
            self.progress.message(line)
        clock.prior = est.rates()
        self._tick()

    def _tick(self) -> None:
        self.progress.eta(self.clock.seconds_left() if self.clock is not None else None)

    def _clock_done(self, gan: ResolvedGan, stage: str, fraction: float = 0.0,
                    seconds: float = 0.0) -> None:
        if self.clock is not None:
            self.clock.done(gan.name, stage, fraction, seconds)
        self._tick()

    def _make_study(self, gan: ResolvedGan) -> GanStudy:
        from gan_bench.study import GanStudy, gan_sampler_seed, study_name  # deferred: optuna

        s, b = self.suite, self.suite.budget
        evals = 1
        if b.eval_every and b.iterations:
            evals = max(1, -(-b.iterations // b.eval_every))
        return GanStudy(name=study_name(s.name, gan.name), storage_url=self.storage_url,
                        search=gan.search, direction=self.direction, sampler=s.sampler.name,
                        seed=gan_sampler_seed(s.sampler.seed, gan.name),
                        n_startup_trials=s.sampler.n_startup_trials,
                        pruner=s.pruner.name, pruner_startup=s.pruner.n_startup_trials,
                        n_warmup_evals=s.pruner.n_warmup_evals, max_evals=evals, worker=self.worker)

    def _run_gan(self, gan: ResolvedGan, outcome: SuiteOutcome) -> GanOutcome:
        from gan_bench.tracking import RunHandle  # deferred: imports mlflow

        b = self.suite.budget
        study = self._make_study(gan)
        parent_id = self.tracker.parent_run(study.name, gan.name,
                                            tags=self._tags(gan, "study"), params=spec_params(gan))
        parent = RunHandle(self.tracker, parent_id)
        parent.set_note(views.gan_note(self.suite, gan))
        self._log_inputs(parent)
        best = study.best(1)
        trials = gan_trials(self.suite, gan)
        self.progress.gan_start(gan.name, study.counts().done, trials,
                                best[0].value if best else None)
        max_failures = trials if b.max_failures is None else b.max_failures
        status = "FINISHED"
        try:
            while not self._out_of_time():
                if study.failures() >= max_failures:
                    self.progress.message(f"{gan.name}: {study.failures()} failed trials reach "
                                          f"budget.max_failures={max_failures}; search stopped")
                    break
                interrupts.check()
                tickets = self._next_tickets(study, trials, self._pack_size(gan))
                if not tickets:
                    break
                self._search(gan, study, tickets, parent_id)
                outcome.new_trials += len(tickets)
            if self.clock is not None:
                self.clock.close(gan.name, "search")
            if not self._out_of_time():
                outcome.new_finalists += self._run_finalists(gan, study, parent_id)
                if self.clock is not None:
                    self.clock.close(gan.name)
        except BaseException as exc:  # the summary is best effort: never replace why we stop
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            for close in (lambda: self.summary.write(gan, study, parent),
                          lambda: self.tracker.finish_parent(parent_id, status)):
                try:
                    close()
                except Exception as err:  # noqa: BLE001 - e.g. the store that just failed
                    exc.add_note(f"gan-bench: also failed to close {gan.name}'s parent run: "
                                 f"{type(err).__name__}: {str(err)[:200]}")
            raise
        try:
            self.summary.write(gan, study, parent)
        finally:
            self.tracker.finish_parent(parent_id, status)
        # a worker killed while this GAN ran left its trial's run RUNNING: end it FAILED. After
        # finish_parent: the GAN's parent, shared by the workers, may have been made by the
        # dead one, and is not an orphan while this worker finishes it.
        self.tracker.close_orphans()
        done = self._gan_outcome(gan, study)
        study.close()  # N workers x GANs of a suite must not keep a pool each
        return done

    def _log_inputs(self, run: RunHandle) -> None:
        if not run.ended:
            run.log_datasets(self.datasets)

    def _gan_outcome(self, gan: ResolvedGan, study: GanStudy) -> GanOutcome:
        c = study.counts()
        best = study.best(1)
        return GanOutcome(gan.name, study.name, c.complete, c.pruned, study.failures(),
                          best[0].value if best else None, dict(best[0].params) if best else {},
                          self.summary.finalists(gan))

    # ------------------------------------------------------------------ search trials
    def train_config(self, gan: ResolvedGan, params: dict[str, Any], seed: int) -> TrainConfig:
        return trial_config(self.suite, gan, params, seed, str(self.device))

    def _pack_size(self, gan: ResolvedGan) -> int:
        """budget.packed_trials for this GAN: 1 when it cannot be packed (said once)."""
        want = self.suite.budget.packed_trials
        if want == 1:
            return 1
        if gan.name not in self._pack_sizes:
            cfg = self.train_config(gan, {}, self.base_seed)
            problems = pack_problems(gan.spec, [cfg])
            if problems:
                self.progress.message(f"{gan.name}: trials run one at a time ({'; '.join(problems)})")
            # packed_trials is a count or "auto"
            size = 1 if problems else (auto_pack_size(gan.spec, cfg, self.data) if want == "auto" else cast(int, want))
            self._pack_sizes[gan.name] = min(size, max(gan_trials(self.suite, gan),
                                                       self.suite.finalists.seeds))
        return self._pack_sizes[gan.name]

    @staticmethod
    def _next_tickets(study: GanStudy, budget: int, size: int) -> list[TrialTicket]:
        """Up to `size` trials to train now; never waits on this worker's own running trials."""
        first = study.next_trial(budget)
        tickets = [] if first is None else [first]
        while tickets and len(tickets) < size:
            c = study.counts()
            if c.done + c.running >= budget and c.waiting == 0:
                break
            ticket = study.next_trial(budget)
            if ticket is None:
                break
            tickets.append(ticket)
        return tickets

    def _search(self, gan: ResolvedGan, study: GanStudy, tickets: list[TrialTicket],
                parent: str) -> None:
        """Train the tickets' trials: together when they pack (each keeps its own run, pruning
        and fate), else one after another (e.g. a searched batch size)."""
        cfgs = [self.train_config(gan, t.params, self.base_seed + t.number) for t in tickets]
        groups = [tickets] if len(tickets) > 1 and not pack_problems(gan.spec, cfgs) \
            else [[t] for t in tickets]
        for group in groups:
            numbers = ",".join(str(t.number) for t in group)
            jobs = [self._search_job(gan, study, t, parent, len(group), numbers) for t in group]
            label = dict(group[0].params) if len(group) == 1 else {"packed trials": numbers}
            self._train(gan, jobs, label)

    def _search_job(self, gan: ResolvedGan, study: GanStudy, ticket: TrialTicket, parent: str,
                    packed: int, numbers: str) -> Job:
        cfg = self.train_config(gan, ticket.params, self.base_seed + ticket.number)
        tags = {**self._tags(gan, "search"), "trial": str(ticket.number)}
        run = self.tracker.start_run(views.trial_name(ticket.number, name_params(cfg)),
                                     parent_id=parent, tags=tags,
                                     params=train_params(gan, cfg, len(self.data)))
        # goes into run.json with the protocol when the trial ends
        run.context = {"optuna_study": study.name, "optuna_trial": ticket.number,
                       "sampler_seed": study.sampler_seed}
        if packed > 1:
            run.context["packed_with"] = numbers
        if ticket.retry_of is not None:
            run.context["retry_of"] = ticket.retry_of
        self._log_inputs(run)
        return Job(study, cfg, run, ticket.number, ticket=ticket)

    # ------------------------------------------------------------------ finalists
    def _run_finalists(self, gan: ResolvedGan, study: GanStudy, parent: str) -> int:
        """The top settings x seeds; with budget.packed_trials != 1 the seeds of one setting
        train together in packs (one Trainer: the same nets and data, fresh seeds)."""
        f = self.suite.finalists
        done = 0
        for rank, trial in enumerate(study.best(f.top)):
            seeds = [FINALIST_SEED0 + i for i in range(f.seeds)]
            size = self._finalist_pack_size(gan, trial, len(seeds))
            for i in range(0, len(seeds), size):
                interrupts.check()
                if self._out_of_time():
                    return done
                claimed = [(seed, key) for seed in seeds[i:i + size]
                           if (key := self._claim_finalist(gan, study, trial, seed)) is not None]
                if not claimed:
                    continue
                together = ",".join(str(seed) for seed, _ in claimed)
                jobs = [self._finalist_job(gan, study, parent, trial, rank, seed, key,
                                           together if len(claimed) > 1 else None)
                        for seed, key in claimed]
                label = ({"finalist_seed": claimed[0][0]} if len(claimed) == 1
                         else {"finalist_seeds": together})
                self._train(gan, jobs, {**label, **trial.params})
                done += len(jobs)
        return done

    def _finalist_pack_size(self, gan: ResolvedGan, trial: FrozenTrial, n_seeds: int) -> int:
        if self.suite.budget.packed_trials == 1 or n_seeds < 2:
            return 1
        cfgs = [self.train_config(gan, dict(trial.params), FINALIST_SEED0 + i) for i in range(2)]
        if pack_problems(gan.spec, cfgs):
            return 1
        return max(1, min(self._pack_size(gan), n_seeds))

    def _claim_finalist(self, gan: ResolvedGan, study: GanStudy, trial: FrozenTrial,
                        seed: int) -> str | None:
        """The finalist's key when this process may train it now, else None."""
        key = finalist_key(study.name, trial.number, seed)
        taken = self.tracker.find_runs(f"tags.`{KEY_TAG}` = '{key}'")
        if any(r["status"] in ("RUNNING", "FINISHED") for r in taken):
            return None
        # Atomic claim in the shared storage: of two workers here at once, one trains it. The
        # attempt number (runs of this key that ended FAILED / KILLED) lets a later run retry a
        # finalist that was interrupted or orphaned.
        if not study.claim(f"{key}#{len(taken)}"):
            self.progress.message(f"{gan.name}: finalist trial {trial.number} seed {seed} is "
                                  "claimed by another worker")
            return None
        return key

    def _finalist_job(self, gan: ResolvedGan, study: GanStudy, parent: str, trial: FrozenTrial,
                      rank: int, seed: int, key: str, together: str | None) -> Job:
        cfg = self.train_config(gan, dict(trial.params), seed)
        tags = {**self._tags(gan, "final"), KEY_TAG: key, "source_trial": str(trial.number)}
        run = self.tracker.start_run(views.final_name(seed, trial.number), parent_id=parent,
                                     tags=tags, params=train_params(gan, cfg, len(self.data)))
        run.context = {"optuna_study": study.name, "finalist_rank": rank, "seed": seed}
        if together is not None:
            run.context["packed_with"] = together
        self._log_inputs(run)
        return Job(study, cfg, run, trial.number, seed=seed)

    # ------------------------------------------------------------------ one path for every job
    def _train(self, gan: ResolvedGan, jobs: list[Job], label: dict[str, Any]) -> None:
        """Train `jobs` (one trial, or a pack of the same GAN's trials in one Trainer), then
        settle each. Ctrl-C or an error of ours ends every unsettled job (retried later when
        interrupted) and propagates; a device out of memory fails the jobs and goes on."""
        start = time.perf_counter()
        monitors = [self._monitor(job) for job in jobs]
        try:
            solo = len(jobs) == 1
            trainer = Trainer(gan.spec, jobs[0].cfg if solo else [j.cfg for j in jobs], self.data,
                              [monitors[0]] if solo else [[m] for m in monitors])
            for job in jobs:
                job.run.context["speed"] = trainer.speed_tags()
            self.progress.trial_start(gan.name, jobs[0].number, label,
                                      max(t.total_iterations for t in trainer.trials))
            with contextlib.ExitStack() as stack:  # every run shows the machine it shared
                for job in jobs:
                    stack.enter_context(job.run.system_metrics(SYSTEM_METRICS_S))
                with LEDGER.phase("training"):  # evaluations and MLflow writes: their own phases
                    fitted = trainer.fit()
            results = [fitted] if isinstance(fitted, TrainResult) else fitted
            for job, member, result in zip(jobs, trainer.trials, results):
                self._settle(gan, job, member, result, start, len(jobs))
        except BaseException as exc:
            if not is_out_of_memory(exc):  # Ctrl-C: retried later; a bug of ours: recorded
                for job in jobs:
                    if not job.run.ended:
                        self._aborted(job, exc)
                raise
            for job in jobs:  # this setting does not fit: failed trials, not a crash
                if not job.run.ended:
                    self._failed(gan, job, exc, "oom", start)

    def _monitor(self, job: Job) -> TrialMonitor:
        ticket = job.ticket
        pruner = None if ticket is None else (lambda value: job.study.report(ticket, value))
        return TrialMonitor(job.run, self.scorer, sample_picture, self.progress, pruner)

    def _settle(self, gan: ResolvedGan, job: Job, member: Trial, result: TrainResult,
                start: float, packed: int) -> None:
        """One job's end: failed (diverged), taken by another worker, or done."""
        if result.error is not None:
            self._failed(gan, job, result.error, "diverged", start)
        elif result.status == "stopped" and result.stop_reason.startswith(TAKEN):
            self._taken(gan, job, result.stop_reason, start)
        else:
            try:
                self._done(gan, job, member, result, start, packed)
            except TrialTaken as exc:
                self._taken(gan, job, str(exc), start)

    def _done(self, gan: ResolvedGan, job: Job, member: Trial, result: TrainResult, start: float,
              packed: int) -> None:
        seconds = time.perf_counter() - start
        run, cfg = job.run, member.cfg
        per_image = {"perf/train_seconds": result.seconds,
                     "perf/img_per_s": result.iterations * cfg.batch_size / max(result.seconds, 1e-9)}
        value: float | None
        if job.ticket is None:  # a finalist: every metric of the suite on n_fake fresh samples
            records = self._final_metrics(member, run, per_image, result.iterations)
            status, value = f"finalist seed {job.seed}", records[self.objective_key].value
            run.end("FINISHED", {"state": "complete"})
        else:
            status, value = self._search_done(job, member, result, seconds, packed, per_image)
        self._clock_done(gan, job.stage, result.iterations / max(member.total_iterations, 1),
                         seconds / packed)
        best = job.study.best(1) if job.ticket is not None else []
        self.progress.trial_end(gan.name, job.number, status, value, seconds,
                                best[0].value if best else None, result.stop_reason)

    def _search_done(self, job: Job, member: Trial, result: TrainResult, seconds: float,
                     packed: int, per_image: dict[str, float]) -> tuple[str, float | None]:
        assert job.ticket is not None
        attrs: dict[str, Any] = {"seconds": seconds, "iterations": result.iterations,
                                 "device": str(self.device)}
        if packed > 1:
            attrs["packed_trials"] = packed
        run = job.run
        run.log_metrics({**per_image, "perf/seconds": seconds}, result.iterations)
        run.log_json(member.resolved_config(), "config.json")
        self._log_context(run, self.scorer.protocols)
        value = result.final_metrics.get(self.objective_key)
        if result.status == "stopped":
            job.study.prune(job.ticket, attrs)
            # recognisable in the runs table: the name says where it stopped; its last
            # eval/ value is a half-run's, not comparable with finished trials
            run.rename(views.trial_name(job.number, name_params(member.cfg),
                                        pruned_at=result.iterations))
            run.end("KILLED", {"state": "pruned", "stop_reason": result.stop_reason})
            return "pruned", value
        # a completed trial was evaluated at its last iteration, and TrialMonitor.on_eval
        # returns the objective: final_metrics holds it
        assert value is not None
        job.study.complete(job.ticket, value, attrs)
        run.end("FINISHED", {"state": "complete"})
        return "complete", value

    def _failed(self, gan: ResolvedGan, job: Job, exc: BaseException, kind: str,
                start: float) -> None:
        """A failed job (diverged, out of memory): recorded, counted, the search goes on."""
        reason = str(exc).splitlines()[0][:500]
        best = None
        if job.ticket is not None:
            attrs: dict[str, Any] = {"failure_kind": kind}
            if isinstance(exc, TrainingDiverged):
                attrs.update(diverged_step=exc.step, diverged_what=exc.what)
            try:
                job.study.fail(job.ticket, reason, attrs)
            except TrialTaken as taken:
                self._taken(gan, job, str(taken), start)
                return
            job.run.rename(views.trial_name(job.number, name_params(job.cfg), failed=True))
            found = job.study.best(1)
            best = found[0].value if found else None
        job.run.end("FAILED", {"state": kind, "fail_reason": reason})
        if job.ticket is None:
            self._clock_done(gan, "final")
        self.progress.trial_end(gan.name, job.number, "failed", None,
                                time.perf_counter() - start, best, reason)

    def _taken(self, gan: ResolvedGan, job: Job, reason: str, start: float) -> None:
        """Another worker failed this trial (and queued it again): end the MLflow run KILLED
        with state `taken`, tell Optuna nothing, go on with the next trial."""
        job.run.end("KILLED", {"state": "taken", "fail_reason": reason[:500]})
        self.progress.trial_end(gan.name, job.number, "taken", None,
                                time.perf_counter() - start, None, reason)

    @staticmethod
    def _aborted(job: Job, exc: BaseException) -> None:
        """Record a job stopped by Ctrl-C or an error, in both stores as far as they answer:
        when one of them is what failed (a lost connection, a full disk), the other is still
        told, and `exc` stays what the caller raises. An interrupted search trial is retried
        later; a finalist's run ends KILLED (interrupted) or FAILED, and its key is retried."""
        ticket = job.ticket
        if ticket is None:
            job.run.__exit__(type(exc), exc, None)
            return
        if isinstance(exc, KeyboardInterrupt):
            steps = (lambda: job.study.fail(ticket, "interrupted by the user",
                                            {"failure_kind": "interrupted"}, retry=True),
                     lambda: job.run.end("KILLED", {"state": "interrupted"}))
        else:
            reason = f"{type(exc).__name__}: {exc}"
            steps = (lambda: job.study.fail(ticket, f"error: {reason}", {"failure_kind": "error"}),
                     lambda: job.run.end("FAILED", {"state": "error", "fail_reason": reason[:500]}))
        for step in steps:
            try:
                step()
            except TrialTaken:
                pass
            except Exception as err:  # noqa: BLE001 - the store that failed; said once, below
                exc.add_note(f"gan-bench: could not record the trial: {type(err).__name__}")

    def _final_metrics(self, member: Trial, run: RunHandle, per_image: dict[str, float],
                       step: int) -> dict[str, MetricRecord]:
        """Every metric of the suite on n_fake fresh samples; curves, records, protocol, G."""
        with LEDGER.phase("final metrics"):  # its MLflow writes: the tracking phase
            metrics = list(dict.fromkeys([self.objective, *self.suite.metrics.final]))
            records = self.scorer.score(member, metrics, self.suite.metrics.n_fake)
            run.log_metrics({**views.final_metrics(records), **per_image}, step)
            metrics_sha = run.log_json({k: rec.to_dict() for k, rec in records.items()}, "metrics.json")
            run.log_json(member.resolved_config(), "config.json")
            self._log_context(run, records)
            path = self.out / "checkpoints" / f"{run.run_id}_G.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            # D too: the theory checks compare D at the end of training with the optimal D*
            torch.save({"G": member.G.state_dict(), "D": member.D.state_dict(),
                        "config": member.resolved_config()}, path)
            # sha256 of what the report reads back: a damaged artifact is refused, never used
            run.set_tags({SHA_TAGS["metrics.json"]: metrics_sha, SHA_TAGS["checkpoint"]: sha256_file(path)})
            run.log_artifact(path, "checkpoint")
            path.unlink()
            self._log_generator(member, run)
            interrupts.check()  # inside the run: an interrupt during logging leaves it KILLED
            return records

    @staticmethod
    def _log_generator(member: Trial, run: RunHandle) -> None:
        """The finalist's G as an MLflow model (the UI's Models column; the best of each GAN is
        registered with alias `best`): z (n, nz) -> samples, in eval mode."""
        G = member.G
        example = None
        if not member.spec.arch_options.get("conditional", False):  # G(z, y): no signature
            example = G.sample_z(2, generator=torch.Generator(device=member.device).manual_seed(0),
                                 device=member.device)
        run.log_model(G, "generator", example=example,
                      pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "gan-bench"])

    # ------------------------------------------------------------------ descriptions
    def _tags(self, gan: ResolvedGan, stage: str) -> dict[str, str]:
        """The tags a user filters on (gan, stage, arch, loss; `state` when a run ends), the
        code and machine, MLflow's own source and user tags; the rest of a run's context goes
        to its run.json (`_log_context`)."""
        spec = gan.spec
        return {"gan": gan.name, "stage": stage, "arch": spec.arch, "loss": spec.loss,
                "git_sha": self.git_sha, "hardware": self.hardware, **self.source_tags}

    def _log_context(self, run: RunHandle, records: dict[str, MetricRecord]) -> None:
        """run.json (context, metric protocols, versions) and the compact `protocol` tag."""
        versions = next(iter(records.values())).protocol.get("versions") if records else None
        run.log_json({"context": {**self._context_base(), **run.context},
                      "protocol": {k: {f: v for f, v in rec.protocol.items() if f != "versions"}
                                   for k, rec in records.items()},
                      "versions": versions or {}}, "run.json")
        if records:
            run.set_tags({"protocol": protocol_line(records)[:5000]})

    def _context_base(self) -> dict[str, Any]:
        s = self.suite
        return {"suite": s.name, "dataset": s.dataset.name, "optuna_storage": redact(self.storage_url),
                "git_sha": self.git_sha, "objective": self.objective_key,
                "direction": self.direction, "worker": self.worker, "hardware": self.hardware,
                "command": self.command}
