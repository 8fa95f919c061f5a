"""The `server` marker that, with `slow`, makes `pytest -m "not server and not slow"` the
fast loop (see conftest and markers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import kustomize
from markers import starts_a_server, uses_a_server


def _starts_the_key_vault_fake() -> None:
    from fakes.azure_keyvault import FakeKeyVault

    with FakeKeyVault():
        pass


def _builds_an_overlay() -> None:
    kustomize(Path(__file__).parent)


def _starts_one_in_a_nested_function(register: Callable[..., object]) -> None:
    @register  # the nested body is the last code of the function: its lines count too
    def later() -> None:
        from fakes.azure_keyvault import FakeKeyVault

        with FakeKeyVault():
            pass


def _reads_a_file() -> str:
    return open(__file__, encoding="utf-8").read()


def test_a_server_started_in_the_body_or_a_helper_is_seen() -> None:
    assert starts_a_server(_starts_the_key_vault_fake)
    assert starts_a_server(_builds_an_overlay)  # helpers.kustomize runs kubectl
    assert starts_a_server(_starts_one_in_a_nested_function)
    assert not starts_a_server(_reads_a_file)


def test_this_test_is_not_marked(request: pytest.FixtureRequest) -> None:
    assert not uses_a_server(request.node)
    assert request.node.get_closest_marker("server") is None


def test_a_test_using_a_server_fixture_is_marked(request: pytest.FixtureRequest,
                                                 fault_proxy: object) -> None:
    assert uses_a_server(request.node)
    assert request.node.get_closest_marker("server") is not None
