"""Benchmark: `deparrow-secrets scan` (known-value search) against `detect-secrets scan`.

    python benchmarks/bench_scan.py                  # 10,000 files, 100 MB, 20 values
    python benchmarks/bench_scan.py --files 2000 --mb 20 --runs 5 --dir /tmp/tree --keep

Builds a git repository of FILES generated text files (YAML-like configuration, prose,
hexadecimal ids: about MB megabytes in all) with a deparrow-secrets project whose catalog
has VALUES generated values, provisioned into the embedded store by the real CLI. A few
values are planted (plain and base64) so that the scan has something to find. Then, in
the same run and over the same tree:

- `deparrow-secrets scan` as a process (best of RUNS; start-up, store, git ls-files, read
  and search included): wall time and MB/s;
- the in-process search alone over the same bytes with three strategies: batched
  `bytes.find` per needle (what scan does), `bytes.find` file by file, and one compiled
  regex alternation of all needles;
- `detect-secrets scan` as a process (once: it is slow), the reference.

Prints a table and the throughput ratio; the target is scan >= 5x detect-secrets.
Exit status 1 with --strict when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
_WORDS = ("name value image port replicas container service deployment metadata labels "
          "spec template env config host path timeout retries enabled version release "
          "namespace app the of and to in for is on with by this that from import def "
          "return class if else database cache queue worker ingress volume mount secret "
          "key token password user admin grafana postgres redis deparrow metaos")
WORDS = _WORDS.split(" ")


def catalog_yaml(count: int) -> str:
    lines = ["values:"]
    for i in range(count):
        lines += [f"  BENCH_VALUE_{i:02d}:", "    description: benchmark value",
                  "    requirement: required", "    source: generated",
                  "    generate: {length: 32, alphabet: alphanumeric}"]
    lines += ["secrets:", "  bench-secrets:"]
    lines += [f"    - BENCH_VALUE_{i:02d}" for i in range(count)]
    return "\n".join(lines) + "\n"


def text_line(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return ("  " * rng.randint(0, 4) + rng.choice(WORDS) + ": "
                + " ".join(rng.choices(WORDS, k=rng.randint(1, 8))))
    if r < 0.8:
        return "    " + " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))
    if r < 0.95:
        return f"  id: {rng.getrandbits(48):012x}"
    return "# " + " ".join(rng.choices(WORDS, k=6))


def generate_tree(root: Path, files: int, total_mb: float, seed: int) -> int:
    rng = random.Random(seed)
    pool = [text_line(rng) for _ in range(20000)]
    size = int(total_mb * 1_000_000 / files)
    written = 0
    per_dir = 100
    for i in range(files):
        directory = root / "src" / f"module{i // per_dir:03d}"
        if i % per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        out, n = [], 0
        while n < size:
            line = pool[rng.randrange(len(pool))]
            out.append(line)
            n += len(line) + 1
        data = "\n".join(out)[:size - 1] + "\n"
        (directory / f"file{i:05d}.yaml").write_text(data, encoding="utf-8")
        written += len(data)
    return written


def plant(root: Path, values: dict[str, str], count: int) -> list[str]:
    """Put `count` values into existing files (half plain, half base64)."""
    import base64

    planted = []
    files = sorted((root / "src").rglob("*.yaml"))
    step = max(1, len(files) // (count + 1))
    for n, key in enumerate(sorted(values)[:count]):
        path = files[(n + 1) * step]
        value = values[key]
        text = base64.b64encode(value.encode()).decode() if n % 2 else value
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"leaked: {text}\n")
        planted.append(key)
    return planted


def run(cmd: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, **kw)


def setup(root: Path, args: argparse.Namespace) -> tuple[int, dict[str, str], list[str]]:
    cli = str(BIN / "deparrow-secrets")
    (root / "catalog.yaml").write_text(catalog_yaml(args.values), encoding="utf-8")
    (root / "deparrow-secrets.yaml").write_text(
        "catalog: catalog.yaml\nenvironments:\n  dev:\n    store: {provider: local}\n",
        encoding="utf-8")
    run(["git", "init", "-q"], root)
    done = run([cli, "provision", "--env", "dev"], root)
    if done.returncode != 0:
        raise SystemExit(f"provision failed: {done.stderr}")
    values = {}
    for i in range(args.values):
        key = f"BENCH_VALUE_{i:02d}"
        values[key] = run([cli, "get", key, "--reveal"], root).stdout.strip()
    size = generate_tree(root, args.files, args.mb, args.seed)
    planted = plant(root, values, args.plant)
    run(["git", "add", "-A"], root)
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@invalid")
    run(["git", "commit", "-q", "-m", "tree", "--no-gpg-sign"], root, env=env)
    return size, values, planted


def time_scan(root: Path, runs: int) -> tuple[float, dict[str, object]]:
    cli = str(BIN / "deparrow-secrets")
    best, report = float("inf"), {}
    for _ in range(runs):
        started = time.perf_counter()
        done = run([cli, "scan", "--output", "json"], root)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise SystemExit(f"scan failed ({done.returncode}): {done.stderr}")
        if elapsed < best:
            best, report = elapsed, json.loads(done.stdout)
    return best, report


def time_strategies(root: Path, values: dict[str, str]) -> dict[str, float]:
    from deparrow_secrets.gitrepo import list_files
    from deparrow_secrets.scan.search import SearchStats, find_all, search_files
    from deparrow_secrets.scan.values import needles
    from deparrow_secrets.secret import SecretValue

    found = needles({k: SecretValue(v) for k, v in values.items()})
    files = list_files([root], [root / ".deparrow-secrets"])
    for path in files:  # warm the page cache for every strategy alike
        path.read_bytes()
    out = {}
    started = time.perf_counter()
    list(search_files(files, found, SearchStats()))
    out["bytes.find, 1 MB batches (scan)"] = time.perf_counter() - started
    started = time.perf_counter()
    for path in files:
        find_all(path.read_bytes(), found)
    out["bytes.find per file"] = time.perf_counter() - started
    started = time.perf_counter()
    joined = [b"\0".join(p.read_bytes() for p in files[i:i + 3000])
              for i in range(0, len(files), 3000)]
    for data in joined:
        find_all(data, found)
    out["bytes.find, 30 MB batches"] = time.perf_counter() - started
    pattern = re.compile(b"|".join(re.escape(n.pattern) for n in found))
    started = time.perf_counter()
    for path in files:
        list(pattern.finditer(path.read_bytes()))
    out["regex alternation per file"] = time.perf_counter() - started
    return out


def time_detect_secrets(root: Path) -> tuple[float, int]:
    exe = shutil.which("detect-secrets", path=str(BIN)) or shutil.which("detect-secrets")
    if exe is None:
        raise SystemExit("detect-secrets is not installed (pip install detect-secrets)")
    started = time.perf_counter()
    done = run([exe, "scan"], root)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"detect-secrets failed: {done.stderr[-500:]}")
    results = json.loads(done.stdout)["results"]
    return elapsed, sum(len(v) for v in results.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=100.0, help="total size in MB (10^6 B)")
    parser.add_argument("--values", type=int, default=20, help="catalog values")
    parser.add_argument("--plant", type=int, default=6, help="values planted in files")
    parser.add_argument("--runs", type=int, default=3, help="scan runs (best is kept)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="build the tree here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    parser.add_argument("--no-detect-secrets", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 if under 5x")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-scan-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        size, values, planted = setup(root, args)
        mb = size / 1_000_000
        print(f"tree: {args.files} files, {mb:.1f} MB, {args.values} catalog values "
              f"({len(planted)} planted), built in {time.perf_counter() - started:.1f}s "
              f"at {root}")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)\n")

        scan_s, report = time_scan(root, args.runs)
        found = {k for f in report["findings"] for k in f["keys"]}  # type: ignore[union-attr]
        assert found == set(planted), (found, planted)
        rows = [("deparrow-secrets scan (process)", scan_s, len(report["findings"]))]
        for name, seconds in time_strategies(root, values).items():
            rows.append((f"  in-process: {name}", seconds, None))
        ds_s = None
        if not args.no_detect_secrets:
            ds_s, ds_found = time_detect_secrets(root)
            rows.append(("detect-secrets scan (process)", ds_s, ds_found))

        print(f"{'what':44} {'wall s':>9} {'MB/s':>9} {'findings':>9}")
        for name, seconds, count in rows:
            shown = "" if count is None else str(count)
            print(f"{name:44} {seconds:9.2f} {mb / seconds:9.1f} {shown:>9}")
        if ds_s is not None:
            ratio = ds_s / scan_s
            verdict = "met" if ratio >= 5 else "MISSED"
            print(f"\nthroughput ratio scan / detect-secrets: {ratio:.1f}x "
                  f"(target >= 5x: {verdict})")
            if args.strict and ratio < 5:
                return 1
        return 0
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
