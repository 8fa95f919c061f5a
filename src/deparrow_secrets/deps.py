"""Optional dependencies, imported only when the feature that needs them runs: the one
way the package imports them (provider SDKs, the Kubernetes client, detect-secrets,
kubernetes-validate)."""

from __future__ import annotations

import importlib
from types import ModuleType

from deparrow_secrets.errors import MissingDependencyError


def require(module: str, extra: str, *, purpose: str | None = None,
            hint: str | None = None) -> ModuleType:
    """Import `module` or say what needs it and which extra installs it (exit 7)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs {top}, which is not installed" if purpose
            else f"{module} is not installed",
            hint=hint or f"pip install 'deparrow-secrets[{extra}]'",
        ) from exc
