"""Helpers of the posture tests (a module of its own: `conftest` is ambiguous between test
directories under pytest's prepend import mode)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import yaml

from deparrow_secrets.config.catalog import default_catalog_path


def catalog_with_max_age(root: Path, ages: dict[str, str]) -> Path:
    """The DEparrow catalog with `maxAge` on the values named in `ages`."""
    data = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    for key, age in ages.items():
        data["values"][key]["maxAge"] = age
    path = root / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def backdate_local(store_db: Path, when: datetime) -> None:
    """Make every version of the embedded store look written at `when` (the creation
    date is not sealed: it is metadata, as a store's version dates are)."""
    with sqlite3.connect(store_db) as db:
        db.execute("UPDATE versions SET created=?", (when.astimezone(UTC).isoformat(),))
