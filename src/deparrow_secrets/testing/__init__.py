"""What a store's own tests reuse: the conformance suite every store passes.

A provider outside this package proves its store behaves like the built-in ones with
pytest (the only module here that imports it; nothing in the package imports this one)::

    import pytest
    from deparrow_secrets.testing import StoreConformance

    class TestMyStoreConformance(StoreConformance):
        @pytest.fixture
        def store(self):
            with MyStore(...) as store:   # connected, nothing under the suite's names
                yield store

        @pytest.fixture
        def second_store(self):
            with MyStore(...) as store:   # a second, independent connection
                yield store

The suite writes objects named ``deparrow/conformance/...`` (``conformance-...`` for a
single-value store) and checks reads, check-and-set conflicts, a race between the two
connections, history, rollback, listing, awkward characters, health and reprs.
"""

from __future__ import annotations

from deparrow_secrets.testing.conformance import StoreConformance, race_writers, value

__all__ = ["StoreConformance", "race_writers", "value"]
