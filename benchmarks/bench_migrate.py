"""migrate --from cluster: SECRETS Secrets of KEYS keys each, from the fake API server to
OpenBao (a real server), through the ESO simulator, to hash-verified adoption.

    python benchmarks/bench_migrate.py [--secrets 50] [--keys 20]

Reported: store writes (target: one per remote object; Vault's layout keeps every key
of an environment in one object), API requests, the tool's wall time apart from the
time spent waiting for the simulated controller, and the simulator's own work. A
second run (everything equal) must write nothing.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchsetup import NS, eso_cluster, kubeconfig, rendered_project, simulator_figures

from deparrow_secrets.cluster.official import connect  # noqa: E402
from deparrow_secrets.operations.migrate import MigrateOptions, migrate  # noqa: E402
from deparrow_secrets.project import Project  # noqa: E402
from fakes.eso_simulator import EsoSimulator  # noqa: E402
from servers import OpenBaoServer, free_port  # noqa: E402


def write_project(root: Path, secret_count: int, keys: int) -> Project:
    lines = ["values:"]
    for s in range(secret_count):
        for k in range(keys):
            lines += [f"  S{s:03d}_K{k:03d}:", "    requirement: required",
                      "    source: generated", "    generate: {length: 24}"]
    lines.append("secrets:")
    for s in range(secret_count):
        lines.append(f"  app-{s:03d}:")
        lines += [f"    - S{s:03d}_K{k:03d}" for k in range(keys)]
    return rendered_project(
        root, "catalog: catalog.yaml\nenvironments:\n  staging:\n    store: {provider: "
        "vault, server: 'https://vault.deparrow.internal:8200', "
        f"path: bench-{secrets.token_hex(3)}/staging}}\n", catalog="\n".join(lines) + "\n")


def embed_secrets(api: Any, project: Project) -> None:
    """The catalog's Secrets as the guide leaves them: values embedded in the cluster."""
    for secret in project.catalog.secrets:
        api.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": secret.name, "namespace": NS},
                 "data": {k: base64.b64encode(secrets.token_urlsafe(18).encode()).decode()
                          for k in secret.keys}})


def bench(secret_count: int, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = write_project(tmp, secret_count, keys)
        env = project.environment("staging")
        writes = [0]

        def open_store(create: bool = True) -> Any:
            store = project.open_store(env, create=create)
            original = store.write

            def counted(*args: Any, **kwargs: Any) -> str:
                writes[0] += 1
                return original(*args, **kwargs)

            store.write = counted  # type: ignore[method-assign]
            return store

        with eso_cluster(tmp / "kube") as api:
            embed_secrets(api, project)
            sim = EsoSimulator(api, lambda store_obj: project.open_store(env), interval=0.05)
            try:
                sim.start()
                client = connect(kubeconfig(tmp / "kube"))
                began = time.perf_counter()
                result = migrate(project, env, client, open_store,
                                 MigrateOptions("cluster", timeout=600, poll=0.2))
                wall = time.perf_counter() - began
                first_writes = writes[0]
                again_began = time.perf_counter()
                again = migrate(project, env, client, open_store,
                                MigrateOptions("cluster", timeout=60, poll=0.2))
                again_wall = time.perf_counter() - again_began
                client.close()
                objects = len(project.layout(env).objects())
                return {"secrets": secret_count, "keys": keys, "objects": objects,
                        "verified": len(result.verified), "writes": first_writes,
                        "apiCalls": result.api_calls, "wall": wall, "waited": result.waited,
                        "secondWrites": writes[0] - first_writes,
                        "secondApiCalls": again.api_calls, "secondWall": again_wall,
                        **simulator_figures(sim)}
            finally:
                sim.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    # One Vault object holds every key of an environment: 1,000 properties are over
    # OpenBao's default request limits (each key counts twice), so a second listener
    # with raised limits serves the tool (the error names the same setting).
    port = free_port()
    listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
                "  max_request_json_strings = 1000000\n"
                "  max_request_json_memory = 268435456\n}\n")
    with tempfile.TemporaryDirectory() as bao_dir, \
            OpenBaoServer(Path(bao_dir), audit=False, extra_config=listener) as bao:
        os.environ["VAULT_ADDR"] = f"http://127.0.0.1:{port}"
        os.environ["VAULT_TOKEN"] = bao.token
        r = bench(args.secrets, args.keys)
    print(f"migrate --from cluster, {r['secrets']} Secrets x {r['keys']} keys "
          f"({r['secrets'] * r['keys']} values) -> OpenBao, via the ESO simulator:")
    print(f"  verified by hash: {r['verified']}/{r['secrets']} Secrets")
    print(f"  store writes: {r['writes']} for {r['objects']} remote object(s) "
          "(target: one per object)")
    print(f"  API calls: {r['apiCalls']}")
    print(f"  wall {r['wall']:.2f}s: tool {r['wall'] - r['waited']:.2f}s, waiting for ESO "
          f"{r['waited']:.2f}s")
    print(f"  ESO simulator (apart): {r['simReconciles']} reconciles, {r['simStoreReads']} "
          f"store reads, {r['simWrites']} Secret writes, {r['simTime']:.2f}s in its loops")
    print(f"  second run (all equal): {r['secondWrites']} store writes, "
          f"{r['secondApiCalls']} API calls, {r['secondWall']:.2f}s")
    ok = r["writes"] == r["objects"] and r["secondWrites"] == 0 and \
        r["verified"] == r["secrets"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
