"""Azure Key Vault: one Key Vault secret per catalog key, through azure-keyvault-secrets.

Check-and-set without a conditional write: chain tags on every version, a wait for the
write's own version to show in reads, and a judgement of who came first, with restores
of the value that stands. This module runs that protocol; `connection.py` makes the
calls (credential, client, retries, time bound), `errors.py` translates what fails, and
`ordering.py` decides from version metadata alone. The protocol, its guarantees, the
read lag it tolerates, costs, remaining windows and the service's terms are in
docs/stores.md, "Azure Key Vault".
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deparrow_secrets.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    UncertainWriteError,
)
from deparrow_secrets.providers.azure.connection import (
    KeyVaultConnection,
    vault_url_of,
    version_of,
)
from deparrow_secrets.providers.azure.connection import (
    default_credential as _default_credential,
)
from deparrow_secrets.providers.azure.errors import KeyVaultErrors, SecretSoftDeletedError
from deparrow_secrets.providers.azure.ordering import (
    LATEST_DISABLED,
    NO_PREVIOUS,
    TAG_COMMITTED,
    TAG_PREVIOUS,
    TAG_RESTORES,
    TAG_WRITE,
    Fact,
    Race,
    VersionMeta,
    counts_as,
    lag_pauses,
    newest,
    rollback_target,
    shows,
    version_history,
)
from deparrow_secrets.providers.azure.settings import SECRET_NAME, URL_ENV
from deparrow_secrets.secret import SecretValue
from deparrow_secrets.stores.interface import WHOLE, Health, SecretStore, Snapshot, VersionInfo
from deparrow_secrets.stores.retry import RetryPolicy, bounded, remaining

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

__all__ = ["MAX_VALUE_BYTES", "READ_LAG_TOLERANCE", "URL_ENV", "AzureStore",
           "SecretSoftDeletedError"]

VERSION = re.compile(r"[0-9a-f]{32}")
MAX_VALUE_BYTES = 25 * 1024  # Key Vault's limit on a secret value
READ_LAG_TOLERANCE = 5.0
"""Seconds a write waits for its own new version to show in reads (docs/stores.md)."""
_MAX_TAGS = 15  # Key Vault limit per secret version


def _foreign_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags someone else put on a version (kept on the next one), within Key Vault's limit."""
    kept = [(k, v) for k, v in tags.items() if not k.startswith("deparrow-")]
    return dict(kept[: _MAX_TAGS - 4])


class AzureStore(SecretStore):
    provider = "azure"
    single_value = True

    def __init__(
        self,
        vault_url: str,
        credential: Any,
        environment: str = "production",
        *,
        policy: RetryPolicy | None = None,
        connection_verify: str | bool | None = None,
        polling_interval: float = 1.0,
        recover_timeout: float = 60.0,
        read_lag_tolerance: float = READ_LAG_TOLERANCE,
        owns_credential: bool = False,
        **client_kwargs: Any,
    ) -> None:
        self.vault_url = vault_url.rstrip("/")
        self.environment = environment
        self.policy = policy or RetryPolicy.from_env()
        self._polling_interval = polling_interval
        self._recover_timeout = recover_timeout
        self._read_lag_tolerance = read_lag_tolerance
        self._errors = KeyVaultErrors(self.vault_url, environment, self.policy)
        self._kv = KeyVaultConnection(self.vault_url, credential, self._errors, self.policy,
                                      connection_verify=connection_verify,
                                      owns_credential=owns_credential, **client_kwargs)
        # The SDK client and the caller's credential, for tests that look at the SDK's
        # own settings or clean up a real vault.
        self._client = self._kv.client
        self._credential = credential

    @classmethod
    def from_config(cls, config: Config, env: EnvironmentConfig) -> AzureStore:
        # `_default_credential` is looked up here, in this module, at call time: tests
        # replace it with a static credential.
        return cls(vault_url_of(env), _default_credential(), environment=env.name,
                   owns_credential=True)

    def __repr__(self) -> str:
        return f"AzureStore(vault_url={self.vault_url!r}, environment={self.environment!r})"

    @property
    def vault_name(self) -> str:
        return self._errors.vault_name

    def _err(self, cls: type[StoreError], message: str, key: str | None = None,
             hint: str | None = None) -> StoreError:
        return self._errors.error(cls, message, key, hint)

    def _check_name(self, key: str) -> str:
        if not isinstance(key, str) or not SECRET_NAME.fullmatch(key):
            raise InputError(
                f"[environment {self.environment}, provider azure] {key!r} is not a Key Vault "
                "secret name (1-127 characters of 0-9, a-z, A-Z and -)",
                hint="the layout maps catalog keys to names with underscores as dashes")
        return key

    # ------------------------------------------------------------------ interface

    @bounded
    def read(self, key: str, version: str | None = None) -> Snapshot | None:
        self._check_name(key)
        if version is not None and not VERSION.fullmatch(version.lower()):
            raise self._err(NotFoundError, f"version {version} does not exist (Key Vault "
                            "versions are 32 hex digits)", key)
        secret = self._kv.get(key, version.lower() if version else None)
        if secret is None:
            if version is not None:
                raise self._err(NotFoundError, f"version {version} does not exist", key)
            return None
        return Snapshot(key, str(secret.properties.version),
                        {WHOLE: SecretValue(secret.value or "")})

    @bounded
    def write(self, key: str, values: Mapping[str, SecretValue],
              expected_version: str | None) -> str:
        if set(values) != {WHOLE} or not isinstance(values[WHOLE], SecretValue):
            raise ValueError("a Key Vault secret is one value: write exactly "
                             "{WHOLE: SecretValue(...)}")
        self._check_name(key)
        value = values[WHOLE]
        size = len(value.reveal().encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise InputError(f"[environment {self.environment}, provider azure] {key}: the "
                             f"value is {size:,} bytes; a Key Vault secret holds at most "
                             f"{MAX_VALUE_BYTES:,} bytes (nothing was sent)",
                             hint="store a smaller value (or a reference to where it lives)")
        expected = expected_version.lower() if expected_version else None
        base, base_props, before = self._check_expected(key, expected)
        write_id = secrets.token_hex(8)
        tags = {**_foreign_tags((base_props.tags or {}) if base_props else {}),
                TAG_PREVIOUS: base or NO_PREVIOUS, TAG_WRITE: write_id}
        content_type = base_props.content_type if base_props else None
        try:
            ours = self._kv.put(key, value.reveal(), tags, content_type)
            return self._settle(key, base, before, ours, write_id, value, content_type)
        except StoreUnavailableError as exc:
            # The PUT was sent: its version may be current although we could not confirm
            # (or even see) it. Say so, and how to look, instead of a plain failure.
            raise self._err(StoreUnavailableError, exc.message.split("] ", 1)[-1]
                            + "; the new value was sent and may have been applied", key,
                            hint=self._verify_hint(key)) from None

    def _verify_hint(self, key: str) -> str:
        return (f"check what is current before writing again: `deparrow-secrets history KEY "
                f"--env {self.environment}` (KEY is the catalog key of {key}), or `az "
                f"keyvault secret list-versions --vault-name {self.vault_name} --name {key}`")

    def _look(self, key: str, version: str, older: set[str]
              ) -> tuple[dict[str, VersionMeta], str | None, Any | None]:
        """The versions and the latest once `version` (just written) shows in both.

        Waits up to the read-lag tolerance (never past the call's time bound), then says
        that the outcome cannot be known.
        """
        waited = 0.0
        pauses = lag_pauses(min(self._read_lag_tolerance, remaining(self.policy) - 0.2))
        while True:
            listed = self._kv.versions(key)
            latest, props = self._kv.latest(key)
            if shows(version, listed, latest, older):
                return listed, latest, props
            pause = next(pauses, None)
            if pause is None:
                raise self._err(
                    UncertainWriteError,
                    f"the write may have raced another writer: its new version {version} "
                    f"did not show in Key Vault's reads within {max(waited, 0.0):.1f} s "
                    "(reads can lag behind writes), so it could not be checked against "
                    "other writers", key, hint=self._verify_hint(key))
            time.sleep(pause)
            waited += pause

    def _check_expected(self, key: str, expected: str | None
                        ) -> tuple[str | None, Any | None, dict[str, VersionMeta]]:
        """Step 1: (latest id, its properties, all versions up to it), or ConflictError."""
        for _ in range(3):
            # Creating: nothing existed when get_secret said 404, so nothing needs listing.
            listed = self._kv.versions(key) if expected is not None else {}
            latest, props = self._kv.latest(key)
            if latest == LATEST_DISABLED and expected is None:
                raise self._err(ConflictError, "already exists (its latest version is "
                                "disabled); expected to create it", key,
                                hint="read it again and retry")
            if latest == LATEST_DISABLED:  # take the listing's view of the latest
                latest = newest(listed.values())
            if latest is None:
                if expected is not None:
                    raise self._err(ConflictError, f"changed since it was read: it no longer "
                                    f"exists (expected version {expected})", key,
                                    hint="read it again and retry")
                return None, None, {}
            if expected is None:
                raise self._err(ConflictError, f"already exists (version {latest}); "
                                "expected to create it", key, hint="read it again and retry")
            if latest not in listed:
                continue  # written between the listing and the get: look again
            if not counts_as(latest, expected, listed):
                raise self._err(ConflictError, f"changed since it was read (now version "
                                f"{latest}, expected {expected})", key,
                                hint="read it again and retry")
            return latest, props, listed
        raise self._err(ConflictError, "is being written by someone else right now", key,
                        hint="read it again and retry")

    def _settle(self, key: str, base: str | None, before: dict[str, VersionMeta],
                ours: VersionMeta, write_id: str, value: SecretValue,
                content_type: str | None) -> str:
        """Steps 3-4: did our PUT come first after `base`? Commit, or restore the winner."""
        facts: list[Fact] = []
        older = set(before) | ({base} if base else set())
        for _ in range(2):  # an undecided race gets one more look for what others published
            listed, latest, latest_props = self._look(key, ours.id, older)
            if latest and latest_props is not None:  # newer than the listing: tags count too
                listed.setdefault(latest, version_of(latest_props))
            if latest:
                facts.append((latest, frozenset(listed) - {latest}))
            race = Race.seen(base=base, before=before, listed=listed, write_id=write_id,
                             ours=ours.id, facts=facts)
            verdict = race.verdict()
            if verdict is not None:
                break
        if verdict:
            self._commit(key, ours, race, value, content_type)
            return ours.id
        restored = ""
        if latest in race.mine:  # our losing value is what readers get now
            restored = self._restore_winner(key, base, race, latest)
        raise self._err(ConflictError,
                        "changed while writing: another writer's version came first, or it "
                        "could not be proven that this one did"
                        + (f"; version {restored} now holds the value that stands"
                           if restored else ""), key,
                        hint="read it again and retry; `history` shows the versions")

    def _commit(self, key: str, ours: VersionMeta, race: Race, value: SecretValue,
                content_type: str | None) -> None:
        """Publish the win (tag `deparrow-committed`) and re-assert our value if a loser of
        this race (or a stale restore) became the latest after our check.

        Best effort: the write has already won; a failure here is not reported as one.
        """
        try:
            self._kv.tag(key, ours.id, {**ours.tags, TAG_COMMITTED: "true"})
            latest, props = self._kv.latest(key)
            if not latest or props is None or not race.reasserts(version_of(props)):
                return
            again = self._kv.put(key, value.reveal(), {**_foreign_tags(ours.tags),
                                                      TAG_PREVIOUS: latest,
                                                      TAG_RESTORES: ours.id,
                                                      TAG_WRITE: secrets.token_hex(8)},
                                 content_type)
            self._look(key, again.id, set())
        except StoreError:
            pass

    def _restore_winner(self, key: str, base: str | None, race: Race, latest: str) -> str:
        """Write the winner's value as the newest version, or else the base's value.

        With no provable winner the race is void: the base value is written back, then
        the versions are looked at once more, and a winner that has committed meanwhile
        gets its value written back (it does the converse: commit, then look).
        """
        winner = race.winner()
        if winner is not None:
            return self._rewrite(key, winner, latest)
        if base is None:
            return ""
        restored = self._rewrite(key, base, latest)  # returns once it shows in reads
        committed = race.committed_rival(self._kv.versions(key))
        if committed is not None:
            restored = self._rewrite(key, committed, restored)
        return restored

    def _rewrite(self, key: str, source: str, latest: str) -> str:
        """Write version `source`'s value again as the newest version (a restore)."""
        old = self._kv.get(key, source)
        if old is None:
            return ""
        tags = {**_foreign_tags(old.properties.tags or {}), TAG_PREVIOUS: latest,
                TAG_RESTORES: source, TAG_WRITE: secrets.token_hex(8)}
        restored = self._kv.put(key, old.value or "", tags, old.properties.content_type).id
        self._look(key, restored, set())  # readers see the value that stands once we return
        return restored

    @bounded
    def list_objects(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._kv.names() if n.startswith(prefix))

    @bounded
    def history(self, key: str) -> list[VersionInfo]:
        self._check_name(key)
        listed = self._kv.versions(key)
        if not listed:
            return []
        try:
            latest, _ = self._kv.latest(key)
        except AccessDeniedError:  # list permission without get: order is still known
            latest = None
        return version_history(listed.values(), latest)

    @bounded
    def previous_version(self, key: str) -> str:
        """The newest version before the current one with different content.

        Skips restores of the current version, losers of a write race and disabled
        versions, so a rollback never brings back a value that lost a race.
        """
        target = rollback_target(self.history(key))
        if target is None:
            raise self._err(NotFoundError, "no previous version to roll back to", key)
        return target

    @bounded
    def health(self) -> Health:
        try:
            self._kv.probe()
        except StoreError as exc:
            return Health(False, str(exc))
        return Health(True, f"{self.vault_url}: reachable, authenticated, secrets listable")

    # ------------------------------------------------------------------ soft delete

    @bounded
    def deleted(self) -> list[str]:
        """Names of soft-deleted secrets (they block reuse of the name until recovered)."""
        return sorted(self._kv.deleted_names())

    def recover(self, key: str) -> str:
        """Recover soft-deleted secret `key` (all its versions); returns the current version."""
        self._check_name(key)
        found, version = self._kv.recover(key, self._polling_interval, self._recover_timeout)
        if not found:
            raise self._err(NotFoundError, f"no soft-deleted secret named {key} in "
                            f"{self.vault_url}", key, hint="`deleted()` lists them")
        if version is None:
            raise self._err(StoreUnavailableError,
                            f"recovery of {key} started but did not finish within "
                            f"{self._recover_timeout:g} s", key,
                            hint="Key Vault recovers asynchronously; retry in a minute")
        return version

    def close(self) -> None:
        self._kv.close()
