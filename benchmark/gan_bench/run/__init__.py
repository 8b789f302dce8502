"""`gan-bench run`: the runner (runner.py), what a trial reports while it trains (monitor.py),
how runs are described (describe.py) and a GAN's summary on its parent run (summary.py)."""

from gan_bench.run.runner import GanOutcome, Job, Runner, SuiteOutcome

__all__ = ["Runner", "SuiteOutcome", "GanOutcome", "Job"]
