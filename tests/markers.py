"""Which tests reach a real backend: they get the `server` marker (see conftest).

The fast loop leaves those out, and the few tests marked `slow` by hand (seconds of work
without a backend: mypy, the schema derivation, waiting out retries, a dozen real
processes): ``python -m pytest -m "not server and not slow"``. ``python -m pytest``
runs everything.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import re
import types
from collections.abc import Callable
from pathlib import Path

import pytest

# A test is marked `server` when it reaches a real backend (OpenBao, moto, the Key Vault or
# Kubernetes API fakes, TokenReview, kubectl): through one of these fixtures, directly or
# through another fixture, ...
SERVER_FIXTURES = frozenset({"openbao", "openbao_fresh", "moto", "aws_env", "kube_api",
                             "fault_proxy"})
# ... or because its body, one of its fixtures' bodies or a test helper they call starts
# one or picks one by name.
SERVER_CALLS = ("OpenBaoServer", "RaftOpenBao(", "MotoServer(", "FakeKeyVault(",
                "FakeKubeApiServer(", "started_cluster(", "TokenReviewServer(", "kubectl(",
                "getfixturevalue(")
TESTS_DIR = Path(__file__).resolve().parent


@functools.cache
def _source(function: Callable[..., object]) -> str:
    """The lines of `function`'s code, nested functions included (read off its code object:
    `inspect.getsource` tokenizes the file, for each of a thousand functions)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return ""
    lines = linecache.getlines(code.co_filename)
    return "".join(lines[code.co_firstlineno - 1:_last_line(code)])


def _last_line(code: types.CodeType) -> int:
    last = max((line for _, _, line in code.co_lines() if line is not None),
               default=code.co_firstlineno)
    nested = (_last_line(c) for c in code.co_consts if isinstance(c, types.CodeType))
    return max([last, *nested])


@functools.cache
def _callees(function: Callable[..., object]) -> tuple[Callable[..., object], ...]:
    """The functions of the tests that `function` calls by name."""
    found = []
    for name in dict.fromkeys(re.findall(r"\b(\w+)\(", _source(function))):
        callee = getattr(function, "__globals__", {}).get(name)
        if inspect.isfunction(callee) and \
                Path(inspect.getfile(callee)).resolve().is_relative_to(TESTS_DIR):
            found.append(callee)
    return tuple(found)


# The answers so far: the same fixtures and helpers stand behind hundreds of tests.
_ANSWERS: dict[Callable[..., object], bool] = {}


def starts_a_server(function: Callable[..., object]) -> bool:
    """Whether `function`, or a function of the tests it calls by name, starts a server."""
    if function in _ANSWERS:
        return _ANSWERS[function]
    pending, seen, answer = [function], set(), False
    while pending and not answer:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        answer = _ANSWERS.get(current, False) or \
            any(call in _source(current) for call in SERVER_CALLS)
        # a function answered False reaches no server through anything it calls
        pending.extend(c for c in _callees(current) if _ANSWERS.get(c) is not False)
    _ANSWERS[function] = answer
    return answer


def uses_a_server(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    function = getattr(item, "function", None)
    if info is None or function is None:
        return False
    if starts_a_server(function):
        return True
    for name in info.names_closure:
        if name in SERVER_FIXTURES:
            return True
        if any(starts_a_server(d.func) for d in info.name2fixturedefs.get(name, ())):
            return True
    return False
