"""Metrics: generated samples in, MetricRecords (value + protocol) out.

    evaluator.py         the Evaluator: plans requests, extracts features, builds records
    metric.py            the Metric base class and the types it plans with (Plan, Inputs, ...)
    builtin.py           the built-in metrics (fid, kid, prdc, modes, ...), registered on import
    features.py          feature extractors (inception_tf, mnist_classifier, random_tiny)
    mnist_classifier.py  the project's MNIST classifier network, its training and checkpoint
    real_features.py     the cache of real features; records.py: MetricRecord and protocols
    fid.py, kid.py, inception_score.py, prdc.py, mode_coverage.py: the metric cores
    samples_io.py        reading generated samples from files (`gan-bench score`)

The names below load their module on first use (PEP 562), so importing a light module of this
package (records.py for a report, samples_io.py) does not import torch and the extractors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan_bench.metrics.evaluator import Evaluator, default_metrics
    from gan_bench.metrics.metric import DataInfo, Inputs, Metric, Plan
    from gan_bench.metrics.records import MetricRecord

_MODULE_OF = {"Evaluator": "evaluator", "default_metrics": "evaluator", "Metric": "metric",
              "DataInfo": "metric", "Plan": "metric", "Inputs": "metric", "MetricRecord": "records"}

__all__ = ["Evaluator", "Metric", "MetricRecord", "DataInfo", "Plan", "Inputs",
           "default_metrics"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
