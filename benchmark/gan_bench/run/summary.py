"""A GAN's study summarised on its MLflow parent run: summary metrics and figures, the best
finalist's last sample grid, and its generator registered with the alias `best`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gan_bench import views

if TYPE_CHECKING:
    from gan_bench.config import ResolvedGan
    from gan_bench.study import GanStudy
    from gan_bench.tracking import RunHandle, Tracker

__all__ = ["GanSummary"]


class GanSummary:
    """Writes one suite's GAN summaries into `tracker` (`say` prints one line to the user).

    objective_key: the record the search optimises; record_keys: every record of the
    objective and the final metrics (the parent's `final/` columns); higher: its direction.
    """

    def __init__(self, tracker: Tracker, suite: str, objective_key: str, record_keys: set[str],
                 higher: bool, say: Callable[[str], None]) -> None:
        self.tracker, self.suite, self.say = tracker, suite, say
        self.objective_key, self.record_keys, self.higher = objective_key, record_keys, higher

    def finalists(self, gan: ResolvedGan) -> list[dict[str, Any]]:
        """The GAN's FINISHED finalist runs."""
        return self.tracker.find_runs(f"tags.stage = 'final' and tags.gan = '{gan.name}' and "
                                      "attributes.status = 'FINISHED'")

    def write(self, gan: ResolvedGan, study: GanStudy, parent: RunHandle) -> None:
        finals = self.finalists(gan)
        records = [{k[len("final/"):]: v for k, v in r["metrics"].items() if k.startswith("final/")}
                   for r in finals]
        trials = study.trials()
        parent.log_metrics(views.summary_metrics(trials, records, self.objective_key, self.higher,
                                                 self.record_keys), 0)
        figures = views.study_figures(gan.name, trials, records, self.objective_key, self.higher)
        for name, fig in figures.items():
            parent.log_figure(fig, f"figures/{name}.png")
        views.close_figures(figures)
        key = f"final/{self.objective_key}"
        scored = [r for r in finals if key in r["metrics"]]
        if scored:
            best = (max if self.higher else min)(scored, key=lambda r: r["metrics"][key])
            self._best_samples_to_parent(best, parent)
            self._register_best(gan, best)

    def _best_samples_to_parent(self, best: dict[str, Any], parent: RunHandle) -> None:
        """The best finalist's last sample grid on the parent, under the same image key and
        step: the UI's image grid then shows one grid per GAN with the parents collapsed."""
        from PIL import Image  # deferred: only a GAN with finalists draws

        names = [p for p in self.tracker.artifact_paths(best["run_id"], "images")
                 if p.endswith(".png") and "/samples+step+" in p]
        if not names:
            return
        name = max(names, key=lambda n: int(n.split("+")[2]))
        step = int(name.split("+")[2])
        if any(p.startswith(f"images/samples+step+{step}+")
               for p in self.tracker.artifact_paths(parent.run_id, "images")):
            return  # a rerun that added nothing: the parent already shows it
        with tempfile.TemporaryDirectory(prefix="gan-bench-grid-") as tmp:
            local = self.tracker.download_artifact(best["run_id"], name, tmp)
            with Image.open(local) as img:
                picture = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
        parent.log_stepped_image(picture, "samples", step)

    def _register_best(self, gan: ResolvedGan, run: dict[str, Any]) -> None:
        model_id = self.tracker.logged_model_id(run["run_id"])
        if model_id is None:
            return
        name = f"{self.suite}.{gan.name}"
        if self.tracker.alias_run(name, "best") == run["run_id"]:
            return  # a rerun that changed nothing: no new version
        version = self.tracker.register_model(
            name, f"models:/{model_id}", run["run_id"], "best",
            description=f"Generator of {gan.name} in suite {self.suite}: the best finalist "
                        f"by {self.objective_key} (alias `best`); load it with "
                        "mlflow.pytorch.load_model('models:/" + name + "@best')")
        self.say(f"{gan.name}: registered model {name} version {version} "
                 f"(alias best) from run {run['name']}")
