"""`gan-bench run`: for every GAN of a suite, an Optuna search, then the finalists.

The runner owns the order of things and nothing else: training is the Trainer's, metrics the
Evaluator's, Optuna lives in study.py and MLflow in tracking.py. Everything it records is
written as it happens, so a crash or a kill loses at most the trial in flight, and running the
same command again continues where it stopped (see study.py for the budget rules).

Seeds: search trial n trains with seed `train.seed + n`; finalists with 1000, 1001, ...;
evaluation samples always use z from EVAL_SEED and sample grids z from GRID_SEED, so curves
and frames of different trials are comparable.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench import interrupts, stores, ui
from gan_bench.cache import atomic_write_json, sha256_file
from gan_bench.errors import StoreFailure, TrialTaken
from gan_bench.stores import redact, sqlite_path, store_failure_line
from gan_bench.images import image_grid, points_image
from gan_bench.keys import KEY_TAG, finalist_key, finalist_key_problem
from gan_bench.plan import (EVAL_SEED, FINALIST_SEED0, GRID_SEED, SHA_TAGS, gan_trials,
                            suite_evaluator, train_data, trial_config)
from gan_bench.procs import cpu_model
from gan_bench.progress import Progress_
from gan_bench.devices import resolve_device
from gan_bench.train import Callback, PackedTrainer, TrainConfig, Trainer, TrainingDiverged
from gan_bench.train.packed import pack_problems
from gan_bench.train.trainer import auto_pack_size

__all__ = ["Runner", "SuiteOutcome", "GanOutcome", "EVAL_SEED", "GRID_SEED", "FINALIST_SEED0",
           "train_data", "suite_evaluator", "trial_config"]

GRID_N = 64
SYSTEM_METRICS_S = 5.0  # MLflow system metrics sampling while a run trains
HEARTBEAT_S = 30  # MLflow run heartbeat while training (tracking.close_orphans allows 600 s)


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


class EvalCallback(Callback):
    """At each evaluation: objective on fixed-z samples, sample grid, pruning; logs curves."""

    def __init__(self, runner: "Runner", run: Any, metric: str, n_fake: int,
                 study: Any = None, ticket: Any = None) -> None:
        self.runner, self.run, self.metric, self.n_fake = runner, run, metric, n_fake
        # metrics.curves: scored beside the objective at every evaluation (never pruned on)
        self.metrics = list(dict.fromkeys([metric, *runner.suite.metrics.curves]))
        self.study, self.ticket = study, ticket
        self.last_value: float | None = None
        self.last_records: dict[str, Any] = {}
        self.taken: str | None = None  # why another worker ended this trial (TrialTaken)
        self._beat = time.monotonic()

    def on_log(self, trainer: Trainer, step: int, diagnostics: dict[str, float]) -> None:
        interrupts.check()  # a Ctrl-C that something swallowed stops the trial here
        self.run.log_metrics(ui.train_metrics(diagnostics), step)
        self.runner.progress.iteration(step)
        if time.monotonic() - self._beat > HEARTBEAT_S:  # other hosts' close_orphans reads it
            self.run.heartbeat()
            self._beat = time.monotonic()

    def on_eval(self, trainer: Trainer, step: int) -> dict[str, float]:
        interrupts.check()
        ev = self.runner.evaluator
        records = ev.evaluate(trainer.generate(self.n_fake, seed=EVAL_SEED), self.metrics)
        value = records[self.runner.objective_key].value
        self.run.log_metrics(ui.eval_metrics(records), step)
        # MLflow's stepped image: the UI's image grid chart, with a step slider across runs
        self.run.log_stepped_image(self.runner.sample_picture(trainer), "samples", step)
        self.last_value, self.last_records = value, records
        self.runner.progress.evaluation(step, self.runner.objective_key, value)
        # the last evaluation ends the trial anyway: it completes (a "pruned" trial that ran
        # every iteration would hide a finished value from the sampler and the report)
        try:
            pruned = self.study is not None and self.study.report(self.ticket, value)
        except TrialTaken as exc:  # another worker judged us dead: stop, the runner ends it
            self.taken = str(exc)
            trainer.request_stop("taken by another worker")
            return {self.metric: value}
        if pruned and step < trainer.total_iterations:
            trainer.request_stop(f"pruned at iteration {step}")
        return {self.metric: value}


class Runner:
    """Runs one suite in this process (`worker` distinguishes parallel processes' samplers).

    estimate: time a few iterations of each GAN before training (estimate.py), print the cost
    and start the suite's ETA from it; without it the ETA starts once a trial has finished.
    """

    def __init__(self, suite: Any, *, worker: int = 0, progress: Progress_ | None = None,
                 estimate: bool = False, command: str = "") -> None:
        self.suite, self.worker = suite, worker
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
        self.clock: Any = None  # estimate.SuiteClock, made once the training data is loaded

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        from gan_bench.tracking import Tracker, git_sha

        s = self.suite
        self._check_store_files()
        self.data = train_data(s)  # first: missing data (e.g. offline) must not leave a run dir
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "suite.json", s.to_dict())
        self.evaluator = suite_evaluator(s, self.device)
        # the record the search optimises: metrics.objective_record, else the headline
        self.objective_key = self.evaluator.objective_key(self.objective, s.metrics.objective_record)
        self.direction = "maximize" if self.evaluator.higher_is_better(self.objective_key) else "minimize"
        self.git_sha = git_sha()
        self.hardware = describe_hardware(self.device)
        # artifacts: <db folder>/mlartifacts for a local store, the server's own store for http
        self.tracker = Tracker(self.tracking_uri, s.name,
                               tags={"suite": s.name, "dataset": s.dataset.name,
                                     "objective": self.objective_key, "direction": self.direction})
        ui.describe(self.tracker, s, self.command)
        self.datasets = ui.dataset_inputs(s, self.data)
        from gan_bench.tracking import git_commit

        self.source_tags = {"mlflow.source.name": self.command, "mlflow.source.type": "LOCAL",
                            "mlflow.user": ui.user()}
        commit = git_commit()
        if commit:
            self.source_tags["mlflow.source.git.commit"] = commit
        closed = self.tracker.close_orphans()
        if closed:
            self.progress.message(f"marked {closed} MLflow run(s) of dead processes FAILED (orphaned)")

    def _check_store_files(self) -> None:
        """Refuse a local store that is an empty (0-byte) file while the other store holds runs:
        the search would silently start over next to the old finalists (or the reverse)."""
        from gan_bench.errors import UserInputError

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

    def _check_store_contents(self, gan: Any, records: list[dict[str, Any]],
                              searches: int) -> None:
        """The same check on what the stores hold: trials in one and none in the other."""
        from gan_bench.errors import UserInputError

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

    def _check_finalist_keys(self, gan: Any, finals: list[dict[str, Any]]) -> None:
        """A finished finalist whose key contradicts its own seed or trial: the finalist it
        really is would be trained again and the one its key names skipped."""
        from gan_bench.errors import UserInputError
        from gan_bench.study import study_name

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

    def _start_clock(self, gans: list[Any]) -> None:
        """Print the suite's cost (timed when `estimate`) and start its ETA from the runs left."""
        from gan_bench.estimate import SuiteClock, count_suite, estimate_suite, format_estimate
        from gan_bench.study import study_name, study_records

        self.clock = SuiteClock(count_suite(self.suite, len(self.data)))
        finals = self.tracker.find_runs("tags.stage = 'final' and attributes.status = 'FINISHED'")
        searches = self.tracker.find_runs("tags.stage = 'search'")
        for gan in gans:
            records = study_records(self.storage_url, study_name(self.suite.name, gan.name))
            self._check_store_contents(gan, records,
                                       sum(r["tags"].get("gan") == gan.name for r in searches))
            self._check_finalist_keys(gan, [r for r in finals if r["tags"].get("gan") == gan.name])
            self.clock.resume(gan.name, sum(r["state"] in ("complete", "pruned") for r in records),
                              sum(r["tags"].get("gan") == gan.name for r in finals))
        timed = self.estimate and self.clock.runs_left() > 0
        est = estimate_suite(self.suite, data=self.data, evaluator=self.evaluator, timed=timed)
        if not timed:
            est.untimed = ("every run is already done" if self.estimate
                           else "--no-estimate; the ETA starts after the first finished run")
        for line in format_estimate(est):
            self.progress.message(line)
        self.clock.prior = est.rates()
        self._tick()

    def _tick(self) -> None:
        self.progress.eta(self.clock.seconds_left() if self.clock is not None else None)

    def _make_study(self, gan: Any) -> Any:
        from gan_bench.study import GanStudy, gan_sampler_seed, study_name

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

    def _run_gan(self, gan: Any, outcome: SuiteOutcome) -> GanOutcome:
        from gan_bench.tracking import RunHandle as RunHandle_

        b = self.suite.budget
        study = self._make_study(gan)
        parent = self.tracker.parent_run(study.name, gan.name, tags=self._tags(gan, "study", study),
                                         params=self._spec_params(gan))
        parent_run = RunHandle_(self.tracker, parent)
        parent_run.set_note(ui.gan_note(self.suite, gan))
        self._log_inputs(parent_run)
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
                self._run_tickets(gan, study, tickets, parent)
                outcome.new_trials += len(tickets)
            self.clock.close(gan.name, "search")
            if not self._out_of_time():
                outcome.new_finalists += self._run_finalists(gan, study, parent)
                self.clock.close(gan.name)
        except BaseException as exc:  # the summary is best effort: never replace why we stop
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            for close in (lambda: self._summarise(gan, study, parent_run),
                          lambda: self.tracker.finish_parent(parent, status)):
                try:
                    close()
                except Exception as err:  # noqa: BLE001 - e.g. the store that just failed
                    exc.add_note(f"gan-bench: also failed to close {gan.name}'s parent run: "
                                 f"{type(err).__name__}: {str(err)[:200]}")
            raise
        try:
            self._summarise(gan, study, parent_run)
        finally:
            self.tracker.finish_parent(parent, status)
        return self._gan_outcome(gan, study)

    def _log_inputs(self, run: Any) -> None:
        if not run.ended:
            run.log_datasets(self.datasets)

    def _finalist_runs(self, gan: Any) -> list[dict[str, Any]]:
        return self.tracker.find_runs(f"tags.stage = 'final' and tags.gan = '{gan.name}' and "
                                      "attributes.status = 'FINISHED'")

    def _summarise(self, gan: Any, study: Any, parent: Any) -> None:
        """The study's summary on the GAN's parent run (metrics, figures) and the best
        finalist's generator registered with the alias `best`."""
        finals = self._finalist_runs(gan)
        records = [{k[len("final/"):]: v for k, v in r["metrics"].items() if k.startswith("final/")}
                   for r in finals]
        higher = self.direction == "maximize"
        keys = {k for m in dict.fromkeys([self.objective, *self.suite.metrics.final])
                for k in self.evaluator.records(m)}
        parent.log_metrics(ui.summary_metrics(study.study.get_trials(deepcopy=False),
                                              records, self.objective_key, higher, keys), 0)
        figures = ui.study_figures(gan.name, study.study.get_trials(deepcopy=False), records,
                                   self.objective_key, higher)
        for name, fig in figures.items():
            parent.log_figure(fig, f"figures/{name}.png")
        ui.close_figures(figures)
        key = f"final/{self.objective_key}"
        scored = [r for r in finals if key in r["metrics"]]
        if scored:
            best = (max if higher else min)(scored, key=lambda r: r["metrics"][key])
            self._best_samples_to_parent(best, parent)
            self._register_best(gan, best)

    def _best_samples_to_parent(self, best: dict[str, Any], parent: Any) -> None:
        """The best finalist's last sample grid on the parent, under the same image key and
        step: the UI's image grid then shows one grid per GAN with the parents collapsed."""
        import tempfile

        from PIL import Image

        names = [f.path for f in self.tracker.client.list_artifacts(best["run_id"], "images")
                 if f.path.endswith(".png") and "/samples+step+" in f.path]
        if not names:
            return
        name = max(names, key=lambda n: int(n.split("+")[2]))
        step = int(name.split("+")[2])
        if any(f.path.startswith(f"images/samples+step+{step}+")
               for f in self.tracker.client.list_artifacts(parent.run_id, "images")):
            return  # a rerun that added nothing: the parent already shows it
        with tempfile.TemporaryDirectory(prefix="gan-bench-grid-") as tmp:
            local = self.tracker.client.download_artifacts(best["run_id"], name, tmp)
            with Image.open(local) as img:
                picture = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
        parent.log_stepped_image(picture, "samples", step)

    def _register_best(self, gan: Any, run: dict[str, Any]) -> None:
        found = self.tracker.client.search_logged_models(
            experiment_ids=[self.tracker.experiment_id],
            filter_string=f"source_run_id = '{run['run_id']}'")
        if not found:
            return
        name = f"{self.suite.name}.{gan.name}"
        if self.tracker.alias_run(name, "best") == run["run_id"]:
            return  # a rerun that changed nothing: no new version
        version = self.tracker.register_model(
            name, f"models:/{found[0].model_id}", run["run_id"], "best",
            description=f"Generator of {gan.name} in suite {self.suite.name}: the best finalist "
                        f"by {self.objective_key} (alias `best`); load it with "
                        "mlflow.pytorch.load_model('models:/" + name + "@best')")
        self.progress.message(f"{gan.name}: registered model {name} version {version} "
                              f"(alias best) from run {run['name']}")

    def _gan_outcome(self, gan: Any, study: Any) -> GanOutcome:
        c = study.counts()
        best = study.best(1)
        finals = self.tracker.find_runs(
            f"tags.stage = 'final' and tags.gan = '{gan.name}' and attributes.status = 'FINISHED'")
        return GanOutcome(gan.name, study.name, c.complete, c.pruned, study.failures(),
                          best[0].value if best else None, dict(best[0].params) if best else {},
                          finals)

    # ------------------------------------------------------------------ one trial
    def train_config(self, gan: Any, params: dict[str, Any], seed: int) -> TrainConfig:
        return trial_config(self.suite, gan, params, seed, str(self.device))

    def _trial_run(self, gan: Any, study: Any, ticket: Any, parent: str,
                   extra_tags: dict[str, str] | None = None) -> tuple[TrainConfig, Any, EvalCallback]:
        """The trial's config, its MLflow run (started) and its EvalCallback."""
        cfg = self.train_config(gan, ticket.params, self.base_seed + ticket.number)
        tags = {**self._tags(gan, "search", study), "trial": str(ticket.number)}
        context = {"optuna_study": study.name, "optuna_trial": ticket.number,
                   "sampler_seed": study.sampler_seed, **(extra_tags or {})}
        if ticket.retry_of is not None:
            context["retry_of"] = ticket.retry_of
        run = self.tracker.start_run(ui.trial_name(ticket.number, _name_params(cfg)),
                                     parent_id=parent, tags=tags,
                                     params=self._train_params(gan, cfg))
        run.context = context  # goes into run.json with the protocol when the trial ends
        self._log_inputs(run)
        cb = EvalCallback(self, run, self.objective, self.suite.metrics.n_fake_search, study, ticket)
        return cfg, run, cb

    def _run_trial(self, gan: Any, study: Any, ticket: Any, parent: str) -> None:
        cfg, run, cb = self._trial_run(gan, study, ticket, parent)
        start = time.perf_counter()
        try:
            trainer = Trainer(gan.spec, cfg, self.data, callbacks=[cb])
            run.context["speed"] = trainer.speed_tags()
            self.progress.trial_start(gan.name, ticket.number, ticket.params, trainer.total_iterations)
            with run.system_metrics(SYSTEM_METRICS_S):
                result = trainer.fit()
        except BaseException as exc:  # Ctrl-C: retried later; a bug of ours: recorded, raised
            if is_out_of_memory(exc):  # this setting does not fit: a failed trial, not a crash
                self._trial_failed(gan, study, ticket, run, exc, "oom", start)
                return
            self._trial_aborted(study, ticket, run, exc)
            raise
        if result.error is not None:
            self._trial_failed(gan, study, ticket, run, result.error, "diverged", start)
            return
        self._trial_done(gan, study, ticket, run, trainer.trials[0], result, cb, start)

    # ------------------------------------------------------------------ packed trials
    def _pack_size(self, gan: Any) -> int:
        """budget.packed_trials for this GAN: 1 when it cannot be packed (said once)."""
        want = self.suite.budget.packed_trials
        if want == 1:
            return 1
        cache = self._pack_sizes
        if gan.name not in cache:
            cfg = self.train_config(gan, {}, self.base_seed)
            problems = pack_problems(gan.spec, [cfg])
            if problems:
                self.progress.message(f"{gan.name}: trials run one at a time ({'; '.join(problems)})")
            size = 1 if problems else (auto_pack_size(gan.spec, cfg, self.data) if want == "auto" else want)
            cache[gan.name] = min(size, max(gan_trials(self.suite, gan), self.suite.finalists.seeds))
        return cache[gan.name]

    @staticmethod
    def _next_tickets(study: Any, budget: int, size: int) -> list[Any]:
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

    def _run_tickets(self, gan: Any, study: Any, tickets: list[Any], parent: str) -> None:
        cfgs = [self.train_config(gan, t.params, self.base_seed + t.number) for t in tickets]
        if len(tickets) == 1 or pack_problems(gan.spec, cfgs):  # e.g. a searched batch size
            for ticket in tickets:
                self._run_trial(gan, study, ticket, parent)
            return
        self._run_pack(gan, study, tickets, parent)

    def _run_pack(self, gan: Any, study: Any, tickets: list[Any], parent: str) -> None:
        """The tickets' trials in one PackedTrainer; each keeps its own run, pruning and fate."""
        numbers = ",".join(str(t.number) for t in tickets)
        made = [self._trial_run(gan, study, t, parent, {"packed_with": numbers}) for t in tickets]
        start = time.perf_counter()
        try:
            pack = PackedTrainer(gan.spec, [m[0] for m in made], self.data, [[m[2]] for m in made])
            for _, run, _ in made:
                run.context["speed"] = pack.speed_tags()
            self.progress.trial_start(gan.name, tickets[0].number, {"packed trials": numbers},
                                      max(t.total_iterations for t in pack.trials))
            with contextlib.ExitStack() as stack:  # every run shows the machine it shared
                for _, run, _ in made:
                    stack.enter_context(run.system_metrics(SYSTEM_METRICS_S))
                results = pack.fit()
        except BaseException as exc:  # Ctrl-C: retried later; a bug of ours: recorded, raised
            if is_out_of_memory(exc):
                for ticket, (_, run, _) in zip(tickets, made):
                    self._trial_failed(gan, study, ticket, run, exc, "oom", start)
                return
            for ticket, (_, run, _) in zip(tickets, made):
                self._trial_aborted(study, ticket, run, exc)
            raise
        for ticket, (_, run, cb), trial, result in zip(tickets, made, pack.trials, results):
            if result.error is not None:
                self._trial_failed(gan, study, ticket, run, result.error, "diverged", start)
            else:
                self._trial_done(gan, study, ticket, run, trial, result, cb, start, len(tickets))

    @staticmethod
    def _trial_aborted(study: Any, ticket: Any, run: Any, exc: BaseException) -> None:
        """Record a trial stopped by Ctrl-C (retried later) or an error, in both stores as far
        as they answer: when one of them is what failed (a lost connection, a full disk), the
        other is still told, and `exc` stays what the caller raises."""
        if isinstance(exc, KeyboardInterrupt):
            steps = (lambda: study.fail(ticket, "interrupted by the user",
                                        {"failure_kind": "interrupted"}, retry=True),
                     lambda: run.end("KILLED", {"state": "interrupted"}))
        else:
            reason = f"{type(exc).__name__}: {exc}"
            steps = (lambda: study.fail(ticket, f"error: {reason}", {"failure_kind": "error"}),
                     lambda: run.end("FAILED", {"state": "error", "fail_reason": reason[:500]}))
        for step in steps:
            try:
                step()
            except TrialTaken:
                pass
            except Exception as err:  # noqa: BLE001 - the store that failed; said once, below
                exc.add_note(f"gan-bench: could not record the trial: {type(err).__name__}")

    def _trial_taken(self, gan: Any, ticket: Any, run: Any, reason: str, start: float) -> None:
        """Another worker failed this trial (and queued it again): end the MLflow run KILLED
        with state `taken`, tell Optuna nothing, go on with the next trial."""
        run.end("KILLED", {"state": "taken", "fail_reason": reason[:500]})
        self.progress.trial_end(gan.name, ticket.number, "taken", None,
                                time.perf_counter() - start, None, reason)

    def _trial_failed(self, gan: Any, study: Any, ticket: Any, run: Any, exc: BaseException,
                      kind: str, start: float) -> None:
        reason = str(exc).splitlines()[0][:500]
        attrs = {"failure_kind": kind}
        if isinstance(exc, TrainingDiverged):
            attrs.update(diverged_step=exc.step, diverged_what=exc.what)
        try:
            study.fail(ticket, reason, attrs)
        except TrialTaken as taken:
            self._trial_taken(gan, ticket, run, str(taken), start)
            return
        cfg = self.train_config(gan, ticket.params, self.base_seed + ticket.number)
        run.rename(ui.trial_name(ticket.number, _name_params(cfg), failed=True))
        run.end("FAILED", {"state": kind, "fail_reason": reason})
        best = study.best(1)
        self.progress.trial_end(gan.name, ticket.number, "failed", None, time.perf_counter() - start,
                                best[0].value if best else None, reason)

    def _trial_done(self, gan: Any, study: Any, ticket: Any, run: Any, trainer: Trainer,
                    result: Any, cb: EvalCallback, start: float, packed: int = 1) -> None:
        if cb.taken is None:
            try:
                self._trial_told(gan, study, ticket, run, trainer, result, cb, start, packed)
                return
            except TrialTaken as exc:
                cb.taken = str(exc)
        self._trial_taken(gan, ticket, run, cb.taken, start)

    def _trial_told(self, gan: Any, study: Any, ticket: Any, run: Any, trainer: Trainer,
                    result: Any, cb: EvalCallback, start: float, packed: int = 1) -> None:
        seconds = time.perf_counter() - start
        attrs = {"seconds": seconds, "iterations": result.iterations, "device": str(self.device)}
        if packed > 1:
            attrs["packed_trials"] = packed
        run.log_metrics({"perf/train_seconds": result.seconds, "perf/seconds": seconds,
                         "perf/img_per_s": result.iterations * trainer.cfg.batch_size / max(result.seconds, 1e-9)},
                        result.iterations)
        run.log_json(trainer.resolved_config(), "config.json")
        self._log_context(run, cb.last_records)
        if result.status == "stopped":
            study.prune(ticket, attrs)
            # recognisable in the runs table: the name says where it stopped; its last
            # eval/ value is a half-run's, not comparable with finished trials
            run.rename(ui.trial_name(ticket.number, _name_params(trainer.cfg),
                                     pruned_at=result.iterations))
            run.end("KILLED", {"state": "pruned", "stop_reason": result.stop_reason})
            status, value = "pruned", cb.last_value
        else:
            study.complete(ticket, cb.last_value, attrs)
            run.end("FINISHED", {"state": "complete"})
            status, value = "complete", cb.last_value
        self.clock.done(gan.name, "search", result.iterations / max(trainer.total_iterations, 1),
                        seconds / packed)
        self._tick()
        best = study.best(1)
        self.progress.trial_end(gan.name, ticket.number, status, value, seconds,
                                best[0].value if best else None, result.stop_reason)

    # ------------------------------------------------------------------ finalists
    def _run_finalists(self, gan: Any, study: Any, parent: str) -> int:
        """The top settings x seeds; with budget.packed_trials != 1 the seeds of one setting
        train together in packs (one PackedTrainer: the same nets and data, fresh seeds)."""
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
                if len(claimed) > 1:
                    done += self._run_finalist_pack(gan, study, parent, trial, rank, claimed)
                elif claimed:
                    done += self._run_finalist(gan, study, parent, trial, rank, *claimed[0])
        return done

    def _finalist_pack_size(self, gan: Any, trial: Any, n_seeds: int) -> int:
        if self.suite.budget.packed_trials == 1 or n_seeds < 2:
            return 1
        cfgs = [self.train_config(gan, dict(trial.params), FINALIST_SEED0 + i) for i in range(2)]
        if pack_problems(gan.spec, cfgs):
            return 1
        self._pack_size(gan)  # fills the cache (auto: from free memory)
        return max(1, min(self._pack_sizes[gan.name], n_seeds))

    def _claim_finalist(self, gan: Any, study: Any, trial: Any, seed: int) -> str | None:
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

    def _finalist_run(self, gan: Any, study: Any, parent: str, trial: Any, rank: int, seed: int,
                      key: str, extra_tags: dict[str, str] | None = None) -> tuple[TrainConfig, Any]:
        cfg = self.train_config(gan, dict(trial.params), seed)
        tags = {**self._tags(gan, "final", study), KEY_TAG: key,
                "source_trial": str(trial.number)}
        run = self.tracker.start_run(ui.final_name(seed, trial.number), parent_id=parent,
                                     tags=tags, params=self._train_params(gan, cfg))
        run.context = {"optuna_study": study.name, "finalist_rank": rank, "seed": seed,
                       **(extra_tags or {})}
        self._log_inputs(run)
        return cfg, run

    def _finalist_failed(self, gan: Any, trial: Any, run: Any, exc: BaseException,
                         start: float, kind: str = "diverged") -> None:
        run.end("FAILED", {"state": kind, "fail_reason": str(exc).splitlines()[0][:500]})
        self.clock.done(gan.name, "final")
        self._tick()
        self.progress.trial_end(gan.name, trial.number, "failed", None,
                                time.perf_counter() - start, None, str(exc))

    def _finalist_done(self, gan: Any, trial: Any, seed: int, trainer: Any, run: Any, result: Any,
                       start: float, packed: int = 1) -> None:
        records = self._final_metrics(trainer, run, result)
        value = records[self.objective_key].value
        run.end("FINISHED", {"state": "complete"})
        seconds = time.perf_counter() - start
        self.clock.done(gan.name, "final", result.iterations / max(trainer.total_iterations, 1),
                        seconds / packed)
        self._tick()
        self.progress.trial_end(gan.name, trial.number, f"finalist seed {seed}", value, seconds, None)

    def _run_finalist(self, gan: Any, study: Any, parent: str, trial: Any, rank: int, seed: int,
                      key: str) -> int:
        cfg, run = self._finalist_run(gan, study, parent, trial, rank, seed, key)
        cb = EvalCallback(self, run, self.objective, self.suite.metrics.n_fake_search)
        start = time.perf_counter()
        with run:  # an exception ends it FAILED (KILLED on Ctrl-C) and propagates
            trainer = Trainer(gan.spec, cfg, self.data, callbacks=[cb])
            run.context["speed"] = trainer.speed_tags()
            self.progress.trial_start(gan.name, trial.number, {"finalist_seed": seed, **trial.params},
                                      trainer.total_iterations)
            try:
                with run.system_metrics(SYSTEM_METRICS_S):
                    result = trainer.fit()
            except RuntimeError as exc:  # CUDA's OutOfMemoryError is a RuntimeError too
                if not is_out_of_memory(exc):
                    raise
                self._finalist_failed(gan, trial, run, exc, start, "oom")
                return 1
            if result.error is not None:
                self._finalist_failed(gan, trial, run, result.error, start)
                return 1
            self._finalist_done(gan, trial, seed, trainer.trials[0], run, result, start)
        return 1

    def _run_finalist_pack(self, gan: Any, study: Any, parent: str, trial: Any, rank: int,
                           claimed: list[tuple[int, str]]) -> int:
        """The claimed seeds of one setting in one PackedTrainer; each keeps its own run."""
        seeds = ",".join(str(seed) for seed, _ in claimed)
        made = [self._finalist_run(gan, study, parent, trial, rank, seed, key,
                                   {"packed_with": seeds}) for seed, key in claimed]
        cbs = [EvalCallback(self, run, self.objective, self.suite.metrics.n_fake_search)
               for _, run in made]
        start = time.perf_counter()
        try:
            pack = PackedTrainer(gan.spec, [cfg for cfg, _ in made], self.data, [[cb] for cb in cbs])
            for _, run in made:
                run.context["speed"] = pack.speed_tags()
            self.progress.trial_start(gan.name, trial.number,
                                      {"finalist_seeds": seeds, **trial.params},
                                      max(t.total_iterations for t in pack.trials))
            with contextlib.ExitStack() as stack:  # every run shows the machine it shared
                for _, run in made:
                    stack.enter_context(run.system_metrics(SYSTEM_METRICS_S))
                results = pack.fit()
            for (seed, _), (_, run), member, result in zip(claimed, made, pack.trials, results):
                if result.error is not None:
                    self._finalist_failed(gan, trial, run, result.error, start)
                else:
                    self._finalist_done(gan, trial, seed, member, run, result, start, len(made))
        except BaseException as exc:  # Ctrl-C or a bug: every run of the pack still open ends
            if is_out_of_memory(exc):
                for _, run in made:
                    if not run.ended:
                        self._finalist_failed(gan, trial, run, exc, start, "oom")
                return len(made)
            for _, run in made:
                run.__exit__(type(exc), exc, None)
            raise
        return len(made)

    def _final_metrics(self, trainer: Trainer, run: Any, result: Any) -> dict[str, Any]:
        """Every metric of the suite on n_fake fresh samples; curves, records, protocol, G."""
        metrics = list(dict.fromkeys([self.objective, *self.suite.metrics.final]))
        fake = trainer.generate(self.suite.metrics.n_fake, seed=EVAL_SEED)
        records = self.evaluator.evaluate(fake, metrics)
        flat = ui.final_metrics(records)
        flat.update({"perf/train_seconds": result.seconds,
                     "perf/img_per_s": result.iterations * trainer.cfg.batch_size / max(result.seconds, 1e-9)})
        run.log_metrics(flat, result.iterations)
        metrics_sha = run.log_json({k: rec.to_dict() for k, rec in records.items()}, "metrics.json")
        run.log_json(trainer.resolved_config(), "config.json")
        self._log_context(run, records)
        path = self.out / "checkpoints" / f"{run.run_id}_G.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"G": trainer.G.state_dict(), "config": trainer.resolved_config()}, path)
        # sha256 of what the report reads back: a damaged artifact is refused, never used
        run.set_tags({SHA_TAGS["metrics.json"]: metrics_sha, SHA_TAGS["checkpoint"]: sha256_file(path)})
        run.log_artifact(path, "checkpoint")
        path.unlink()
        self._log_generator(trainer, run)
        interrupts.check()  # inside the run: an interrupt during logging leaves it KILLED
        return records

    def _log_generator(self, trainer: Trainer, run: Any) -> None:
        """The finalist's G as an MLflow model (the UI's Models column; the best of each GAN is
        registered with alias `best`): z (n, nz) -> samples, in eval mode."""
        G = trainer.G
        example = None
        if not trainer.spec.arch_options.get("conditional", False):  # G(z, y): no signature
            example = G.sample_z(2, generator=torch.Generator(device=trainer.device).manual_seed(0),
                                 device=trainer.device)
        run.log_model(G, "generator", example=example,
                      pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "gan-bench"])

    # ------------------------------------------------------------------ descriptions
    def sample_picture(self, trainer: Trainer) -> Any:
        fake = trainer.generate(GRID_N if trainer.data.is_image else 2000, seed=GRID_SEED)
        if trainer.data.is_image:
            return image_grid(fake.numpy(), nrow=8)
        centres = trainer.data.meta.get("centres") if isinstance(trainer.data.meta, dict) else None
        return points_image(fake.numpy(), centres)

    def _tags(self, gan: Any, stage: str, study: Any) -> dict[str, str]:
        """The tags a user filters on (gan, stage, arch, loss; `state` when a run ends), the
        code and machine, MLflow's own source and user tags; the rest of a run's context goes
        to its run.json (`_log_context`)."""
        spec = gan.spec
        return {"gan": gan.name, "stage": stage, "arch": spec.arch, "loss": spec.loss,
                "git_sha": self.git_sha, "hardware": self.hardware, **self.source_tags}

    def _log_context(self, run: Any, records: dict[str, Any]) -> None:
        """run.json (context, metric protocols, versions) and the compact `protocol` tag."""
        versions = next(iter(records.values())).protocol.get("versions") if records else None
        run.log_json({"context": {**self._context_base(), **getattr(run, "context", {})},
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

    def _spec_params(self, gan: Any) -> dict[str, Any]:
        spec = gan.spec
        return {"penalty": spec.penalty, "arch_options": dict(spec.arch_options),
                "loss_params": dict(spec.loss_params), "penalty_params": dict(spec.penalty_params),
                "searched": ",".join(sorted(gan.search)) or "-"}

    def _train_params(self, gan: Any, cfg: TrainConfig) -> dict[str, Any]:
        """The hyperparameters a user compares runs by; every field of the resolved config is
        in the run's config.json."""
        r = cfg.resolved(len(self.data))
        keep = ("lr_g", "lr_d", "lr_ratio", "k", "beta1", "beta2", "optimizer", "batch_size",
                "iterations", "seed", "device")
        return {**self._spec_params(gan), **{k: r[k] for k in keep},
                "log10_lr_ratio": round(math.log10(r["lr_ratio"]), 6)}


# What torch's CPU allocator says when an allocation fails (the kernel may also kill the
# process first: validate's memory rule is the first line of defence, this the second).
_CPU_OOM = ("can't allocate memory", "not enough memory", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation that failed on the device: CUDA's OutOfMemoryError or the CPU
    allocator's RuntimeError (a trial whose setting does not fit is a failed trial)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError) or isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _CPU_OOM)


def _name_params(cfg: TrainConfig) -> dict[str, Any]:
    """k and lr_ratio of a run, for its name."""
    return {"k": cfg.k, "lr_ratio": cfg.resolved_lr_d / cfg.lr_g}


def protocol_line(records: dict[str, Any]) -> str:
    """One compact tag for the runs table: each record's extractor, samples and split, e.g.
    "fid_mnist: mnist_classifier 5000 vs test 10000 fp32-strict"."""
    seen, parts = set(), []
    for rec in records.values():
        p = rec.protocol
        key = (p.get("metric"), p.get("extractor"), p.get("n_fake"), p.get("n_real"))
        if key in seen:
            continue
        seen.add(key)
        real = f" vs {p.get('real_split')} {p.get('n_real')}" if p.get("n_real") else ""
        sha = f" {str(p['extractor_sha256'])[:8]}" if p.get("extractor_sha256") else ""
        prec = f" {p['precision']}" if p.get("precision") else ""
        parts.append(f"{p.get('metric')}: {p.get('extractor')}{sha} {p.get('n_fake')}{real}{prec}")
    return "; ".join(parts)


def describe_hardware(device: torch.device) -> str:
    """"NVIDIA H100 80GB HBM3" or "Intel(R) Xeon(R) ... x 2 cores": goes with every run."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} x {os.cpu_count()} cores"
