"""Which tests reach a real backend: they get the `server` marker (see conftest)."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

# A test is marked `server` when it reaches a real backend (OpenBao, moto, the Key Vault or
# Kubernetes API fakes, TokenReview, kubectl): through one of these fixtures, directly or
# through another fixture, ...
SERVER_FIXTURES = frozenset({"openbao", "openbao_fresh", "moto", "aws_env", "kube_api",
                             "fault_proxy"})
# ... or because its body, one of its fixtures' bodies or a test helper they call starts
# one or picks one by name. `pytest -m "not server"` is the fast loop.
SERVER_CALLS = ("OpenBaoServer", "RaftOpenBao(", "MotoServer(", "FakeKeyVault(",
                "FakeKubeApiServer(", "started_cluster(", "TokenReviewServer(", "kubectl(",
                "getfixturevalue(")
TESTS_DIR = Path(__file__).resolve().parent


@functools.cache
def _source(function: Callable[..., object]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def starts_a_server(function: Callable[..., object]) -> bool:
    """Whether `function`, or a function of the tests it calls by name, starts a server."""
    pending, seen = [function], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        source = _source(current)
        if any(call in source for call in SERVER_CALLS):
            return True
        for name in re.findall(r"\b(\w+)\(", source):
            callee = getattr(current, "__globals__", {}).get(name)
            if inspect.isfunction(callee) and \
                    Path(inspect.getfile(callee)).resolve().is_relative_to(TESTS_DIR):
                pending.append(callee)
    return False


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
