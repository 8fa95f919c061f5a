"""Bounded retries with exponential backoff and full jitter for transient store faults.

Stores classify their SDK's exceptions; this module only decides whether and when
to try again. Limits can be tuned with DEPARROW_SECRETS_RETRIES (attempts) and
DEPARROW_SECRETS_TIMEOUT (seconds per call; stores pass it to their SDK).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    timeout: float = 10.0  # per call, for the SDK's connect/read timeouts

    @classmethod
    def from_env(cls) -> RetryPolicy:
        attempts = _env_number("DEPARROW_SECRETS_RETRIES", cls.attempts, int)
        timeout = _env_number("DEPARROW_SECRETS_TIMEOUT", cls.timeout, float)
        return cls(attempts=max(1, int(attempts)), timeout=max(0.1, float(timeout)))

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


def _env_number(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        from deparrow_secrets.errors import InputError

        raise InputError(f"${name} must be a number, got {raw!r}") from None


def call_with_retry(
    fn: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    on_give_up: Callable[[BaseException, int], BaseException],
) -> T:
    """Run `fn`; retry transient failures; after the last attempt raise `on_give_up(exc, n)`.

    Non-transient exceptions propagate unchanged for the store to translate.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            if attempt >= policy.attempts:
                raise on_give_up(exc, attempt) from None
            time.sleep(policy.delay(attempt))
