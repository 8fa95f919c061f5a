"""The store conformance suite lives beside the store tests (tests/stores)."""

import sys
from pathlib import Path

STORES = str(Path(__file__).resolve().parents[1] / "stores")
if STORES not in sys.path:
    sys.path.insert(0, STORES)
