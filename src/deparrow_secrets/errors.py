"""Exception base of every layer and the exit codes the CLI maps them to.

Messages never contain secret values: callers pass key names, remote keys and
file positions only.
"""

from __future__ import annotations

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_FINDINGS = 1  # a check failed: verify, render --check, lint, scan
EXIT_USAGE = 2  # bad command line, configuration, catalog or input file
EXIT_UNAVAILABLE = 3  # store unreachable, timed out or throttled after retries
EXIT_DENIED = 4  # the store refused the credentials
EXIT_CONFLICT = 5  # check-and-set lost: someone else wrote first
EXIT_INTEGRITY = 6  # wrong key, tampered or corrupt store data
EXIT_MISSING_DEPENDENCY = 7  # an optional extra is not installed


class DeparrowError(Exception):
    """Base of every error the tool reports; `hint` says what to do next."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(DeparrowError):
    """A user-supplied file or value is wrong; `location` is file:line and key path."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key_path = key_path
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key_path:
            where += f"{key_path}: "
        super().__init__(where + message, hint=hint)


class ConfigError(InputError):
    """deparrow-secrets.yaml is invalid."""


class CatalogError(InputError):
    """The catalog file is invalid."""


class MissingDependencyError(DeparrowError):
    exit_code = EXIT_MISSING_DEPENDENCY


class StoreError(DeparrowError):
    """A secret store operation failed; carries where, so the message can name it."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        environment: str | None = None,
        provider: str | None = None,
        remote_key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.environment = environment
        self.provider = provider
        self.remote_key = remote_key
        parts = [p for p in (environment and f"environment {environment}",
                             provider and f"provider {provider}",
                             remote_key and f"remote key {remote_key}") if p]
        prefix = f"[{', '.join(parts)}] " if parts else ""
        super().__init__(prefix + message, hint=hint)


class StoreUnavailableError(StoreError):
    """Down, timed out or throttled after the retries ran out."""

    exit_code = EXIT_UNAVAILABLE


class AccessDeniedError(StoreError):
    exit_code = EXIT_DENIED


class ConflictError(StoreError):
    """Check-and-set failed: the remote object changed since it was read."""

    exit_code = EXIT_CONFLICT


class UncertainWriteError(ConflictError):
    """A write was sent, but whether it took effect (or won against another writer) could
    not be confirmed within the time bound; `history` shows what the store holds."""


class IntegrityError(StoreError):
    """Stored data cannot be trusted: wrong key, tampering, corrupt or unexpected content."""

    exit_code = EXIT_INTEGRITY


class SoftDeletedError(IntegrityError):
    """The remote object is soft-deleted (a Key Vault secret, a Vault KV version, an AWS
    secret scheduled for deletion): recover it before reading or writing it."""


class NotFoundError(StoreError):
    """A named version or object does not exist."""

    exit_code = EXIT_FINDINGS


class ClusterError(DeparrowError):
    """A Kubernetes API call failed; names the verb, resource and namespace it was about.

    The API server's message is kept only where it cannot echo Secret data (never for
    Secrets), so the text can be shown as is.
    """

    exit_code = EXIT_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        context: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.context = context
        parts = [p for p in (context and f"context {context}",
                             verb and resource and f"{verb} {resource}",
                             namespace and f"namespace {namespace}") if p]
        prefix = f"[{', '.join(parts)}] " if parts else ""
        super().__init__(prefix + message, hint=hint)


class ClusterUnavailableError(ClusterError):
    """The API server is down, timed out or kept failing after the retries."""

    exit_code = EXIT_UNAVAILABLE


class ClusterDeniedError(ClusterError):
    """401/403: the credentials lack an RBAC rule (the hint names it)."""

    exit_code = EXIT_DENIED


class ClusterConflictError(ClusterError):
    """409 that persisted through the retries: another writer or field manager."""

    exit_code = EXIT_CONFLICT


class ClusterConfigError(ClusterError):
    """Kubeconfig, context or namespace cannot be used: the user has to fix the input."""

    exit_code = EXIT_USAGE


class NotConvergedError(ClusterError):
    """The cluster did not reach the expected state before the deadline."""

    exit_code = EXIT_FINDINGS


class Notice(UserWarning):
    """Something the user should know that does not stop the command (printed by the CLI
    on stderr as `warning: ...`); never carries a value."""


def notice(message: str, category: type[Notice] = Notice) -> None:
    import warnings

    warnings.warn(message, category, stacklevel=3)
