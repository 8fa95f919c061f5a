"""One time bound per store operation: bounded retries, back-off and a whole-call deadline.

Stores classify their SDK's exceptions; this module decides whether and when to try
again, and when to stop. The limits come from the environment:

- DEPARROW_SECRETS_RETRIES: attempts per request (default 4);
- DEPARROW_SECRETS_TIMEOUT: seconds one store operation may take in all (default 10):
  every request, every retry, every back-off sleep and every byte of a slow answer. A
  server that trickles its answer one byte at a time cannot stretch it: each attempt
  runs in a worker thread that the caller stops waiting for at the deadline (SDK
  timeouts are per socket read, so they alone cannot bound a trickle).

A store marks its public operations with `bounded` (or enters `deadline` itself); every
`call_with_retry` inside shares that operation's deadline. Throttling answers back off
exponentially (1, 2, 4, 8, 16 s: Microsoft's and AWS's guidance) unless the server says
when to come back (Retry-After), never past the deadline. A store that does not answer
gets one progress line on stderr before the deadline ("waiting for ...: retrying (2/4)"),
which names the endpoint and nothing else.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

RETRIES_ENV = "DEPARROW_SECRETS_RETRIES"
TIMEOUT_ENV = "DEPARROW_SECRETS_TIMEOUT"


class CallTimeout(TimeoutError):
    """The operation's deadline passed while a request was still running."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out: no complete answer within {seconds:g} s "
                         f"(${TIMEOUT_ENV} bounds the whole operation)")
        self.seconds = seconds


@dataclass(frozen=True)
class Throttled:
    """A throttling answer; `retry_after` is the server's Retry-After in seconds, if any."""

    retry_after: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    timeout: float = 10.0  # seconds for one whole store operation
    # First back-off after a throttling answer without Retry-After; doubles each time.
    throttle_delay: float = 1.0
    # Seconds of silence from a server before the progress line is printed.
    progress_after: float = 2.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        attempts = _env_number(RETRIES_ENV, cls.attempts, integer=True)
        timeout = _env_number(TIMEOUT_ENV, cls.timeout, integer=False)
        return cls(attempts=int(attempts), timeout=timeout,
                   progress_after=min(cls.progress_after, timeout / 3))

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))

    def throttle_backoff(self, attempt: int, throttled: Throttled) -> float:
        """Seconds to wait before attempt `attempt + 1` after a throttling answer."""
        if throttled.retry_after is not None and throttled.retry_after > 0:
            return throttled.retry_after
        return self.throttle_delay * (2 ** (attempt - 1))


def _env_number(name: str, default: float, *, integer: bool) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    what = "a whole number of attempts, at least 1" if integer else \
        "a number of seconds greater than 0"
    try:
        number = int(raw.strip()) if integer else float(raw.strip())
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        from deparrow_secrets.errors import InputError

        raise InputError(f"${name} must be {what}, got {raw.strip()[:40]!r}",
                         hint=f"unset {name} for the default ({default:g})")
    return number


# --------------------------------------------------------------------------- deadline


class _Scope:
    """The deadline of one store operation and whether its progress line was printed."""

    def __init__(self, end: float, seconds: float) -> None:
        self.end = end
        self.seconds = seconds
        self.announced = False

    def remaining(self) -> float:
        return self.end - time.monotonic()


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "deparrow_secrets_deadline", default=None)


@contextmanager
def deadline(policy: RetryPolicy) -> Iterator[_Scope]:
    """Bound everything inside to `policy.timeout` seconds; an enclosing scope wins."""
    outer = _SCOPE.get()
    if outer is not None:
        yield outer
        return
    scope = _Scope(time.monotonic() + policy.timeout, policy.timeout)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def remaining(policy: RetryPolicy) -> float:
    """Seconds left of the current operation (the whole timeout outside any)."""
    scope = _SCOPE.get()
    return policy.timeout if scope is None else scope.remaining()


def bounded(method: F) -> F:
    """Run a store method under one deadline from the store's `policy`."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with deadline(self.policy):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _announce(scope: _Scope, waiting_for: str | None, text: str) -> None:
    if waiting_for and not scope.announced:
        scope.announced = True
        sys.stderr.write(f"waiting for {waiting_for}: {text}\n")
        sys.stderr.flush()


def _run_until(fn: Callable[[], T], scope: _Scope, policy: RetryPolicy,
               waiting_for: str | None, attempt: int) -> T:
    """`fn()` in a worker thread; stop waiting for it at the deadline (CallTimeout)."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), daemon=True,
                              name="deparrow-secrets-store-call")
    worker.start()
    if not done.wait(max(0.0, min(policy.progress_after, scope.remaining()))):
        if scope.remaining() > 0:
            _announce(scope, waiting_for, f"no answer yet (attempt {attempt}/"
                      f"{policy.attempts}, giving up after {scope.seconds:g} s)")
        done.wait(max(0.0, scope.remaining()))
    if not done.is_set():
        raise CallTimeout(scope.seconds)
    if "error" in box:
        error = box.pop("error")
        try:
            raise error
        finally:
            del error
    return box["value"]


def call_with_retry(
    fn: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    on_give_up: Callable[[BaseException, int], BaseException],
    *,
    throttled: Callable[[BaseException], Throttled | None] | None = None,
    waiting_for: str | None = None,
) -> T:
    """Run `fn`; retry transient failures within the deadline; then raise `on_give_up(exc, n)`.

    `throttled(exc)` recognises throttling answers (they back off longer); `waiting_for`
    names the endpoint in the one progress line. A request still running at the deadline
    gives up with CallTimeout. Non-transient exceptions propagate unchanged for the store
    to translate.
    """
    with deadline(policy) as scope:
        attempt = 0
        while True:
            attempt += 1
            try:
                return _run_until(fn, scope, policy, waiting_for, attempt)
            except CallTimeout as exc:
                raise on_give_up(exc, attempt) from None
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt >= policy.attempts:
                    raise on_give_up(exc, attempt) from None
                throttle = throttled(exc) if throttled is not None else None
                pause = (policy.throttle_backoff(attempt, throttle) if throttle is not None
                         else policy.delay(attempt))
                if pause >= scope.remaining():
                    raise on_give_up(exc, attempt) from None
                _announce(scope, waiting_for, f"retrying ({attempt + 1}/{policy.attempts})")
                time.sleep(pause)
