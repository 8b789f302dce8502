"""A finalist's key: the one string that says which (study, trial, seed) an MLflow run trains.

The runner claims a finalist by its key and finds it done by its key; the report counts one run
per key. The key is also implied by the run's own records (its `gan` and `source_trial` tags,
its `seed` param), so a key that disagrees with them is damage in the store, never a duplicate:
one flipped character would otherwise drop a real finalist as a "duplicate" and rank its GAN on
the seeds that are left (issue 23).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["KEY_TAG", "finalist_key", "finalist_key_problem"]

KEY_TAG = "gan_bench.key"  # the MLflow tag holding a finalist's (or a parent run's) key
_FINALIST = re.compile(r"(?P<study>.+)/final/trial-(?P<trial>-?\d+)/seed-(?P<seed>-?\d+)")


def finalist_key(study: str, trial: int, seed: int) -> str:
    """"<suite>/<gan>/final/trial-<n>/seed-<s>" (study names are "<suite>/<gan>")."""
    return f"{study}/final/trial-{int(trial)}/seed-{int(seed)}"


def finalist_key_problem(run: Mapping[str, Any], study: str) -> str | None:
    """Why the finalist run record `run` (tracking.find_runs' dict) contradicts its own key,
    or None when its key, `source_trial` tag and `seed` param agree (or it has no key: runs
    made before keys). `study` is the study the run's `gan` tag belongs to."""
    key = run["tags"].get(KEY_TAG)
    if key is None:
        return None
    seed, trial = run["params"].get("seed"), run["tags"].get("source_trial")
    want = (finalist_key(study, int(trial), int(seed))
            if _int(seed) and _int(trial) else None)
    if key == want:
        return None
    found = _FINALIST.fullmatch(key)
    said = (f"study {found['study']}, trial {found['trial']}, seed {found['seed']}" if found
            else "no finalist")
    own = (f"study {study}, trial {trial}, seed {seed}" if want
           else f"source_trial {trial!r} and seed {seed!r}, which name no finalist")
    return (f"finalist run {run['run_id']} ({run.get('name')}): its key tag {key!r} says "
            f"{said}, but the run's own records say {own}: the MLflow store is damaged (restore "
            "mlflow.db from a copy)")


def _int(text: object) -> bool:
    return isinstance(text, str) and re.fullmatch(r"-?\d+", text) is not None
