"""Optional dependencies, imported only when the feature that needs them runs."""

from __future__ import annotations

import importlib
from types import ModuleType

from deparrow_secrets.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import `module` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed",
            hint=f"pip install 'deparrow-secrets[{extra}]'",
        ) from exc
