#!/usr/bin/env python3
"""Mutation check of the security- and correctness-critical code (issue 9).

Each mutation below changes one line of one module: a guard removed, a check
weakened, a mode or flag dropped. For each, the source tree is copied to a scratch
directory, the one line is changed there, the tests that guard it run against the
copy (PYTHONPATH points at it; the worktree itself is never modified), and the
mutation is reported `killed` (some test failed) or `survived` (every test passed).

    python tools/mutation_check.py            # every mutation
    python tools/mutation_check.py -k local   # those whose name contains "local"
    python tools/mutation_check.py --list

Exit 0 when every mutation is killed, 1 when some survived, 2 when one no longer
applies (its line changed: update the list).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "src/deparrow_secrets"

H = "tests/hardening"
FILES_T = f"{H}/test_files.py"
SAFE_T = f"{H}/test_safefiles.py"
VALUES_T = f"{H}/test_values.py"
STORE_T = f"{H}/test_local_store.py"
CMDS_T = f"{H}/test_commands.py"
LOCAL_T = "tests/stores/test_local.py"
DEV_T = "tests/test_cli_dev.py"
SCAN_T = "tests/scan/test_scan.py"
RECORD_T = "tests/test_record.py"
FIFTH_T = "tests/providers/test_fifth_provider.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # below src/deparrow_secrets
    old: str  # must occur exactly once in the file (or `occurrence` picks one)
    new: str
    tests: tuple[str, ...]
    occurrence: int | None = None  # which match, when `old` occurs more than once


M = Mutation
MUTATIONS: list[Mutation] = [
    # --- embedded store -----------------------------------------------------------
    M("local: version dropped from the associated data", "providers/local/store.py",
      'return f"{key}\\x00{version}".encode()', 'return f"{key}\\x00".encode()',
      (STORE_T, LOCAL_T)),
    M("local: check-and-set skipped", "providers/local/store.py",
      "if (None if current is None else str(current)) != expected_version:", "if False:",
      (LOCAL_T,)),
    M("local: deleted newest rows not noticed", "providers/local/store.py",
      "        if head != newest:", "        if False:", (STORE_T,)),
    M("local: head record not bound to its object", "providers/local/store.py",
      "return int(self._aead.decrypt(blob[:12], blob[12:], _HEAD_AAD + key.encode()))",
      "return int(self._aead.decrypt(blob[:12], blob[12:], _HEAD_AAD + b'a'))",
      (STORE_T,)),
    M("local: zero-byte file taken for a store", "providers/local/store.py",
      "            if size == 0:", "            if False:", (STORE_T,)),
    M("local: foreign SQLite file taken for a store", "providers/local/store.py",
      'if not {"meta", "versions"} <= tables:', "if False:", (STORE_T,)),
    M("local: new key made for an existing store", "providers/local/store.py",
      "            if not create:\n                raise IntegrityError(",
      "            if False:\n                raise IntegrityError(", (STORE_T,)),
    M("local: readable key file not warned about", "providers/local/store.py",
      "    if st.st_mode & 0o077:", "    if False:", (STORE_T,)),
    M("local: read-only open creates -wal/-shm", "providers/local/store.py",
      'params = {"mode": "ro", "immutable": "1"}', 'params = {"mode": "ro"}', (STORE_T,)),
    M("local: read-only open is read-write", "providers/local/store.py",
      "            if not self.read_only:", "            if True:", (STORE_T,)),
    M("local: huge version reaches SQLite", "providers/local/store.py",
      "version.isascii() and version.isdigit() and len(version) <= 18",
      "version.isdigit()", (STORE_T,)),
    M("local: linked store file followed", "providers/local/store.py",
      "        if stat.S_ISLNK(st.st_mode):\n            raise InputError(",
      "        if False:\n            raise InputError(", (STORE_T, FILES_T)),
    M("local: key file named by the variable not checked", "providers/local/store.py",
      "if named and os.environ.get(KEY_ENV) is None and not Path(named).is_file():",
      "if False:", (STORE_T,)),
    # --- safe files ---------------------------------------------------------------
    M("safefiles: temporary file without O_EXCL", "safefiles.py",
      "fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW",
      "fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW", (SAFE_T, FILES_T)),
    # Expected to survive: POSIX open() with O_CREAT|O_EXCL never follows a link
    # (EEXIST), so O_NOFOLLOW here is belt and braces. Listed to show it, not to kill it.
    M("safefiles: temporary file without O_NOFOLLOW", "safefiles.py",
      "fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW",
      "fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL", (SAFE_T, FILES_T)),
    M("safefiles: directories followed through links", "safefiles.py",
      "_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC",
      "_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC", (FILES_T,)),
    M("safefiles: no path outside the root refused", "safefiles.py",
      "    if path != root and not path.is_relative_to(root):", "    if False:",
      (SAFE_T, FILES_T)),
    M("safefiles: file mode left to the umask", "safefiles.py",
      "        os.fchmod(fd, mode)  # the mode itself", "        pass  # the mode itself",
      (FILES_T,)),
    M("safefiles: new directory mode left to the umask", "safefiles.py",
      "                    os.fchmod(child, mode)", "                    pass", (FILES_T,)),
    M("safefiles: private directory not made 0700", "safefiles.py",
      "    if st.st_mode & 0o077:\n        os.fchmod(fd, PRIVATE_DIR)",
      "    if False:\n        os.fchmod(fd, PRIVATE_DIR)", (SAFE_T,)),
    M("safefiles: rename without the directory fsync", "safefiles.py",
      "        if durable:\n            os.fsync(dir_fd)", "        if False:\n            pass",
      (SAFE_T, FILES_T)),
    M("safefiles: durable file not fsynced before the rename", "safefiles.py",
      "        if durable:\n            os.fsync(fd)", "        if False:\n            pass",
      (SAFE_T,)),
    M("safefiles: create_file replaces what exists", "safefiles.py",
      "        except FileExistsError:\n            return False",
      "        except FileExistsError:\n            os.unlink(path.name, dir_fd=dir_fd); "
      "os.link(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)", (SAFE_T,)),
    # --- manifests and the state directory -----------------------------------------
    M("project: manifests outside the project accepted", "project.py",
      "        if not safefiles.inside(self.config.root, path):", "        if False:",
      (FILES_T,)),
    M("project: linked state directory accepted", "project.py",
      "            safefiles.check_path(self.config.root, path)", "            pass",
      (FILES_T,)),
    # --- provision, set and the one policy -----------------------------------------
    M("provision: generated values from `random`", "operations/provision.py",
      '"".join(secrets.choice(chars) for _ in range(policy.length))',
      '"".join(__import__("random").choice(chars) for _ in range(policy.length))',
      (VALUES_T,)),
    M("provision: a supplied value overwrites an existing one", "operations/provision.py",
      "    if present:\n        return \"exists\"", "    if False:\n        return \"exists\"",
      (VALUES_T,)),
    M("provision: supplied values skip the policy", "operations/provision.py",
      "        check_policy(project.catalog, key, value)", "        pass", (VALUES_T,)),
    M("provision: check-and-set on no version", "operations/provision.py",
      "            version = store.write(remote_key, planned.after, planned.version)",
      "            version = store.write(remote_key, planned.after, None)", (DEV_T,)),
    M("set: a conflict is not retried", "operations/provision.py",
      "        except ConflictError:\n            if attempt == CONFLICT_ATTEMPTS - 1:\n"
      "                raise\n            continue",
      "        except ConflictError:\n            if True:\n"
      "                raise\n            continue", (CMDS_T,)),
    M("set: other properties of the object dropped", "operations/values.py",
      "        values = dict(snap.values) if snap else {}", "        values = {}",
      (CMDS_T,)),
    # --- values are text -------------------------------------------------------------
    M("values: NUL accepted", "operations/values_input.py",
      '    if "\\0" in value:', "    if False:", (VALUES_T,)),
    M("values: over 1 MiB accepted", "operations/values_input.py",
      "    if size > MAX_VALUE_BYTES:", "    if size > 2 * MAX_VALUE_BYTES:", (VALUES_T,)),
    M("values: exactly 1 MiB refused", "operations/values_input.py",
      "    if size > MAX_VALUE_BYTES:", "    if size >= MAX_VALUE_BYTES:", (VALUES_T,)),
    M("values: bad UTF-8 replaced", "operations/values_input.py",
      '        return data.decode("utf-8")', '        return data.decode("utf-8", "replace")',
      (VALUES_T,)),
    M("values: duplicate JSON keys accepted", "operations/values_input.py",
      "data = json.loads(text, object_pairs_hook=_refuse_duplicates(source))",
      "data = json.loads(text)", (VALUES_T,)),
    M("set: click parses the arguments unguarded", "cli/secret_cmds.py",
      '@click.command("set", cls=_ValueFreeCommand)', '@click.command("set")', (VALUES_T,)),
    # --- secret value -----------------------------------------------------------------
    M("secret: format shows the value", "secret.py",
      "    def __format__(self, spec: str) -> str:\n        return MASK",
      "    def __format__(self, spec: str) -> str:\n        return self.reveal()", (VALUES_T,)),
    M("secret: str shows the value", "secret.py",
      "    def __str__(self) -> str:\n        return MASK",
      "    def __str__(self) -> str:\n        return self.reveal()", (VALUES_T,)),
    M("secret: format fields reach the slot", "secret.py",
      '        if name == "_value":', "        if False:", (VALUES_T,)),
    M("secret: copy.copy allowed", "secret.py",
      '        raise TypeError("SecretValue cannot be copied")',
      "        return self  # type: ignore[return-value]", (VALUES_T,), occurrence=0),
    M("secret: copy.deepcopy allowed", "secret.py",
      '        raise TypeError("SecretValue cannot be copied")',
      "        return self  # type: ignore[return-value]", (VALUES_T,), occurrence=1),
    M("secret: equality always true", "secret.py",
      "return hmac.compare_digest(self.reveal().encode(), other.reveal().encode())",
      "return True", (CMDS_T, VALUES_T)),
    # --- rollback -------------------------------------------------------------------
    M("rollback: whole object restored", "operations/history.py",
      "        values = dict(current.values)\n        values[ref.property] = value",
      "        values = dict(store.read(ref.key, source).values)\n"
      "        values[ref.property] = value", (CMDS_T,)),
    M("rollback: a version with the same value counts as previous", "operations/history.py",
      "        if value is not None and value != now:", "        if value is not None:",
      (CMDS_T,)),
    M("rollback: no-op rollback not refused", "operations/history.py",
      "    if current.values.get(ref.property) == value:", "    if False:", (CMDS_T,)),
    M("versions: huge numbers reach the store", "operations/history.py",
      "    if version.isdigit() and len(version) > 18:", "    if False:", (SAFE_T, CMDS_T)),
    # --- export ----------------------------------------------------------------------
    M("export: remote environments exported without the flag", "operations/export.py",
      "    if env.uses_eso and not allow_non_dev:", "    if False:", (FILES_T,)),
    M("export: links not checked before writing", "operations/export.py",
      "        safefiles.check_path(trusted, path)", "        pass", (FILES_T,)),
    M("export: export directory not private", "operations/export.py",
      "        private_dir = True", "        private_dir = False", (FILES_T,)),
    M("export: files not private", "operations/export.py",
      "    safefiles.write_file(root, path, content.encode(\"utf-8\"), "
      "mode=safefiles.PRIVATE_FILE,",
      "    safefiles.write_file(root, path, content.encode(\"utf-8\"), mode=0o644,",
      (FILES_T,)),
    M("export: tracked files written", "operations/export.py",
      "    for path in contents:  # refuse before writing anything, not half-way through\n"
      "        gitrepo.refuse_tracked(path)",
      "    for path in contents:  # refuse before writing anything, not half-way through\n"
      "        pass", (DEV_T,)),
    # --- render ----------------------------------------------------------------------
    M("render: tree files not checked before writing", "render/tree.py",
      "        safefiles.check_path(trusted, root / rel)  # inside the project",
      "        pass  # inside the project", (SAFE_T, FILES_T, CMDS_T)),
    M("render: a directory in a file's place found only half-way", "render/tree.py",
      "        if (root / rel).is_dir():", "        if False:", (CMDS_T,)),
    M("render --check: unreadable file crashes", "render/tree.py",
      "    except UnicodeDecodeError as exc:\n        raise _Unreadable",
      "    except KeyError as exc:\n        raise _Unreadable", (CMDS_T,)),
    # --- scan ------------------------------------------------------------------------
    M("scan: a named file inside the export directory skipped", "gitrepo.py",
      "        if (not explicit and _excluded(path, skip)) or path.is_symlink() \\",
      "        if _excluded(path, excluded) or path.is_symlink() \\", (CMDS_T,)),
    M("scan: the whole dev overlay skipped", "scan/engine.py",
      '            out.append(config.manifests_dir / overlay_dir(env) / "secrets")',
      "            out.append(config.manifests_dir / overlay_dir(env))", (CMDS_T,)),
    M("scan: no value short enough to search", "scan/values.py",
      "        if len(raw) < MIN_LENGTH:", "        if len(raw) < 1000:", (CMDS_T, SCAN_T)),
    M("scan: base64 forms not searched", "scan/values.py",
      "            if form != raw:", "            if False:", (SCAN_T,)),
    # --- the stores' check-and-set (read only: mutated in the scratch copy only) -----
    M("vault: write without cas", "providers/vault/store.py",
      'body = {"options": {"cas": cas},', 'body = {"options": {},',
      ("tests/stores/test_vault.py::TestVaultConformance",)),
    M("vault: a lost race taken for our own retried write", "providers/vault/store.py",
      "            if current is not None and current.version == str(cas + 1) \\",
      "            if current is not None \\",
      (f"{H}/test_store_cas.py", "tests/stores/test_vault.py")),
    M("aws: stale version not refused before writing", "providers/aws/store.py",
      "            if stages is None or CURRENT not in stages.get(expected, ()):",
      "            if stages is None:", ("tests/stores/test_aws.py",)),
    M("aws: AWSCURRENT moved without RemoveFromVersionId", "providers/aws/store.py",
      "                RemoveFromVersionId=expected),", "                ),",
      ("tests/stores/test_aws.py",)),
    M("azure: stale version accepted", "providers/azure/ordering.py",
      "    return expected in (latest, restores)", "    return True",
      ("tests/stores/test_azure.py", "tests/stores/test_azure_ordering.py")),
    M("azure: create over an existing secret", "providers/azure/store.py",
      "            if expected is None:\n                raise self._err(ConflictError, "
      "f\"already exists (version {latest}); \"",
      "            if False:\n                raise self._err(ConflictError, "
      "f\"already exists (version {latest}); \"",
      (f"{H}/test_store_cas.py", "tests/stores/test_azure.py")),
    # --- records and provider options ------------------------------------------------
    M("record: a field assigned after construction", "record.py",
      '        raise FrozenRecordError(f"cannot assign to field {name!r}")',
      "        object.__setattr__(self, name, value)", (RECORD_T,)),
    M("record: compare=False fields compared", "record.py",
      "                 if spec.compare)", "                 if True)", (RECORD_T,)),
    M("providers: a clashing identity option offered", "providers/__init__.py",
      "            if clash:\n", "            if False:\n", (FIFTH_T,)),
    M("policy: another provider's identity option accepted", "policy/__init__.py",
      "        if attr in mine:\n            continue", "        if True:\n            continue",
      (FIFTH_T,)),
]


def _apply(text: str, m: Mutation) -> str | None:
    if m.occurrence is None and text.count(m.old) != 1:
        return None
    start = -1
    for _ in range((m.occurrence or 0) + 1):
        start = text.find(m.old, start + 1)
        if start < 0:
            return None
    return text[:start] + m.new + text[start + len(m.old):]


def run_one(m: Mutation, scratch: Path, timeout: float) -> tuple[str, float]:
    src = scratch / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "deparrow_secrets" / m.file
    mutated = _apply(target.read_text(encoding="utf-8"), m)
    if mutated is None:
        return "stale", 0.0
    target.write_text(mutated, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "-o", "addopts=", *m.tests], cwd=ROOT, env=env, capture_output=True,
            timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.monotonic() - started
    took = time.monotonic() - started
    if done.returncode == 0:
        return "survived", took
    if done.returncode in (1, 3):  # tests failed, or an internal error in the mutant
        return "killed", took
    tail = done.stdout.decode(errors="replace").strip().splitlines()[-3:]
    return "error: " + " | ".join(tail), took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="pattern", default="", help="only names containing this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutation")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if args.pattern.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.file}]  -> {' '.join(m.tests)}")
        return 0
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="deparrow-mutants-") as tmp:
        for m in chosen:
            outcome, took = run_one(m, Path(tmp), args.timeout)
            results.setdefault(outcome.split(" ")[0].rstrip(":"), []).append(m.name)
            print(f"{outcome:18} {took:6.1f}s  {m.name}", flush=True)
    killed = len(results.get("killed", []))
    print(f"\nscore: {killed}/{len(chosen)} killed; "
          + ", ".join(f"{k} {len(v)}" for k, v in sorted(results.items())))
    if results.get("stale"):
        return 2
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
