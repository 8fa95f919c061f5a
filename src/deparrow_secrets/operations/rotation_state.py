"""The resumable record of a rotation in progress: which step it reached, never a value.

One JSON file per environment in the state directory (`.deparrow-secrets/rotate-ENV.json`),
written atomically through `safefiles` (0600 in a 0700 directory, no link followed) after
every step and before every irreversible action, so that a rerun after a killed run knows
what already happened: the remote versions before and after the write, the ExternalSecrets
already verified, the restart time stamped on the workloads. It holds names, versions and
times only; it is removed when the rotation ends (on the new or on the old value).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deparrow_secrets import safefiles
from deparrow_secrets.errors import InputError
from deparrow_secrets.project import Project

FORMAT = 1
# Steps in order; `step` in the record is the last one completed.
STEPS = ("plan", "write", "sync", "restart", "wait")


@dataclass
class ObjectRecord:
    keys: list[str]
    before: str | None
    after: str | None = None
    writing: bool = False  # the write was sent; `after` not known yet


@dataclass
class WorkloadRecord:
    secrets: list[str]
    action: str  # restart | reloader | paused | on-delete
    generation: int = 0  # at plan time: Reloader's rollout moves it
    restarted: bool = False


@dataclass
class RotationRecord:
    kind: str  # rotate | rollback
    environment: str
    keys: list[str]
    restart_at: str  # the restartedAt value stamped on every workload restarted
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    step: str = ""  # the last step completed ("" before the plan is saved)
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    synced: list[str] = field(default_factory=list)  # ExternalSecrets verified
    workloads: dict[str, WorkloadRecord] = field(default_factory=dict)  # "Kind/name"
    undoing: bool = False

    def done(self, step: str) -> bool:
        return bool(self.step) and STEPS.index(self.step) >= STEPS.index(step)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RotationRecord:
        data = dict(doc)
        data.pop("format", None)
        data["objects"] = {k: ObjectRecord(**v) for k, v in data.get("objects", {}).items()}
        data["workloads"] = {k: WorkloadRecord(**v)
                             for k, v in data.get("workloads", {}).items()}
        return cls(**data)


def record_path(project: Project, environment: str) -> Path:
    return project.config.state_dir / f"rotate-{environment}.json"


def load(project: Project, environment: str) -> RotationRecord | None:
    path = record_path(project, environment)
    try:
        raw = safefiles.read_bytes(project.config.root, path, limit=4 * 1024 * 1024)
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError("format")
        return RotationRecord.from_json(doc)
    except (ValueError, TypeError, AttributeError, KeyError):
        raise InputError("the record of an interrupted rotation cannot be read",
                         file=str(path),
                         hint="check the environment with `deparrow-secrets drift --env "
                              f"{environment}`, then remove the file to start afresh") from None


def save(project: Project, record: RotationRecord) -> None:
    data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()
    safefiles.write_file(project.config.root, record_path(project, record.environment), data,
                         private_dir=True)


def clear(project: Project, environment: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        safefiles.remove_file(project.config.root, record_path(project, environment))
