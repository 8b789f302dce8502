"""The one rule for names that become folders, MLflow and Optuna names.

A suite's name is its output folder (`runs/<name>`), its report folder, its MLflow experiment
(whose artifacts live under `mlartifacts/<name>/`) and the prefix of its Optuna studies; a GAN's
name is part of study names, finalist keys and the registered model `<suite>.<gan>`. So a name
must be one safe path component on every filesystem and fit every store's columns: "." and ".."
would write outside the folder, "/" would nest, 300 characters overflow a file name (255 bytes).
"""

from __future__ import annotations

import re

__all__ = ["NAME_MAX", "NAME_RULE", "name_problem"]

NAME_MAX = 64  # well under a file name's 255 bytes once "<suite>.<gan>" or a key is built on it
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_RULE = (f"letters, digits, '_', '-' and '.', starting with a letter or digit, at most "
             f"{NAME_MAX} characters")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a suite or a GAN, or None when it can."""
    shown = name if len(name) <= 40 else name[:37] + "..."
    if not _NAME.fullmatch(name):
        return f"{shown!r} is not a name: use {NAME_RULE}"
    if len(name) > NAME_MAX:
        return f"{len(name)} characters is too long for a name: use {NAME_RULE}"
    return None
