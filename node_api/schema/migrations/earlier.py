"""An earlier migration's module, for a later one that rewrites what it created (a
database function is replaced whole, so the later migration edits the earlier text and
its downgrade restores it). Migration files start with digits, so they are loaded by
path rather than imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

_VERSIONS = Path(__file__).with_name("versions")


def load_migration(filename: str) -> ModuleType:
    """The module of `versions/<filename>`, executed afresh."""
    spec = importlib.util.spec_from_file_location(
        f"creditnet_migration_{filename.removesuffix('.py')}", _VERSIONS / filename
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
