"""Provision and verify a 1,000-key catalog in 3 environments against OpenBao and moto.

Prints wall time per run, HTTP requests per remote object (target: one write per object
on provision, one read per object on verify, none per key), and in the same run the
guide's way for the same data on OpenBao (one `bao kv put` process per environment, the
values on its command line) as the reference ratio. Then the Key Vault store's update
against the fake, without and with read lag (what waiting for its own version costs).

    python benchmarks/bench_stores.py [--keys 1000] [--group-size 100] [--kv-writes 30]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from deparrow_secrets.operations.provision import apply_provision, plan_provision  # noqa: E402
from deparrow_secrets.operations.verify import verify  # noqa: E402
from deparrow_secrets.project import Project  # noqa: E402
from servers import (  # noqa: E402
    MotoServer,
    OpenBaoServer,
    find_executable,
    free_port_pair,
)

ENVS = ("dev", "staging", "production")


class RequestCounter:
    """Counts HTTP requests sent by requests (hvac) and botocore (boto3) in this process."""

    WRITE_TARGETS = ("CreateSecret", "PutSecretValue", "UpdateSecretVersionStage")

    def __init__(self) -> None:
        self.count = 0
        self.writes = 0

    def _is_write(self, request: object) -> bool:
        target = getattr(request, "headers", {}).get("X-Amz-Target", "")
        if isinstance(target, bytes):
            target = target.decode()
        if target:
            return target.rsplit(".", 1)[-1] in self.WRITE_TARGETS
        return getattr(request, "method", "GET") in ("POST", "PUT")

    def install(self) -> None:
        import botocore.httpsession
        import requests.adapters

        counter = self
        for cls in (requests.adapters.HTTPAdapter, botocore.httpsession.URLLib3Session):
            original = cls.send

            def send(self, request, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
                counter.count += 1
                counter.writes += counter._is_write(request)
                return _original(self, request, *args, **kwargs)

            cls.send = send  # type: ignore[method-assign]


def write_catalog(path: Path, keys: int, group_size: int) -> None:
    lines = ["values:"]
    for i in range(keys):
        lines += [f"  KEY_{i:04d}:", "    requirement: required", "    source: generated",
                  "    generate: {length: 32}", f"    remote: {{group: g{i // group_size}}}"]
    lines.append("secrets:")
    for start in range(0, keys, 250):
        lines.append(f"  app-{start // 250}:")
        lines += [f"    - KEY_{i:04d}" for i in range(start, min(keys, start + 250))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(root: Path, store: str) -> None:
    envs = "".join(f"  {e}:\n    store: {store.format(env=e)}\n" for e in ENVS)
    (root / "deparrow-secrets.yaml").write_text(f"catalog: catalog.yaml\nenvironments:\n{envs}",
                                                encoding="utf-8")


def run(project: Project, counter: RequestCounter) -> dict[str, float]:
    figures = {"provision_s": 0.0, "verify_s": 0.0, "objects": 0,
               "provision_requests": 0, "provision_writes": 0, "verify_requests": 0}
    for name in ENVS:
        env = project.environment(name)
        with project.open_store(env) as store:
            store.health()  # connection set-up is not the object's cost
            objects = len(project.layout(env).objects())
            figures["objects"] += objects
            start, before, writes = time.perf_counter(), counter.count, counter.writes
            plans = plan_provision(project, env, store, {})
            apply_provision(project, env, store, plans, {})
            figures["provision_s"] += time.perf_counter() - start
            figures["provision_requests"] += counter.count - before
            figures["provision_writes"] += counter.writes - writes
            start, before = time.perf_counter(), counter.count
            report = verify(project, env, store)
            figures["verify_s"] += time.perf_counter() - start
            figures["verify_requests"] += counter.count - before
            assert report.ok, report.failures[:3]
    return figures


def guide_way(addr: str, token: str, keys: int) -> float:
    """The guide's `vault kv put secret/deparrow/<env> K=V ...`, one process per env."""
    exe = find_executable("bao")
    env = {**os.environ, "BAO_ADDR": addr, "VAULT_ADDR": addr, "BAO_TOKEN": token,
           "VAULT_TOKEN": token}
    start = time.perf_counter()
    for name in ENVS:
        pairs = [f"KEY_{i:04d}={secrets.token_urlsafe(24)}" for i in range(keys)]
        subprocess.run([exe, "kv", "put", "-mount=secret", f"guide/{name}", *pairs], env=env,
                       check=True, capture_output=True)
    return time.perf_counter() - start


def key_vault_updates(writes: int, lag: float) -> tuple[float, float]:
    """Seconds and HTTP requests per update of one Key Vault secret (fake, loopback TLS)."""
    from deparrow_secrets.providers.azure.store import AzureStore
    from deparrow_secrets.secret import SecretValue
    from deparrow_secrets.stores.interface import WHOLE
    from fakes.azure_keyvault import FakeKeyVault, StaticTokenCredential

    with FakeKeyVault(version_order="id") as fake, AzureStore(
            fake.url, StaticTokenCredential(), connection_verify=fake.ca_path) as store:
        key = f"BENCH-{secrets.token_hex(4)}"
        version = store.write(key, {WHOLE: SecretValue(secrets.token_urlsafe(24))}, None)
        fake.read_lag(lag)
        fake.clear_requests()
        start = time.perf_counter()
        for _ in range(writes):
            version = store.write(key, {WHOLE: SecretValue(secrets.token_urlsafe(24))}, version)
        elapsed = time.perf_counter() - start
        return elapsed / writes, len(fake.requests) / writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--group-size", type=int, default=100,
                        help="keys per AWS secret (Secrets Manager caps a value at 64 KiB)")
    parser.add_argument("--kv-writes", type=int, default=30)
    args = parser.parse_args()
    counter = RequestCounter()
    counter.install()
    # OpenBao's default listener refuses a request with more than 1,000 JSON strings, i.e.
    # a KV object of more than ~490 keys; a second listener lifts that for this catalog.
    port = free_port_pair()
    listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
                '  max_request_json_strings = 1000000\n}\n')
    with tempfile.TemporaryDirectory() as tmp, OpenBaoServer(
            Path(tmp) / "bao", audit=False, extra_config=listener) as bao, \
            MotoServer(Path(tmp) / "moto") as moto:
        bao_addr = f"http://127.0.0.1:{port}"
        os.environ.update({"VAULT_ADDR": bao_addr, "VAULT_TOKEN": bao.token, **moto.env()})
        rows = []
        for provider, store in (
                ("vault", "{{provider: vault, server: 'https://vault.example.com', "
                          "path: bench/{env}}}"),
                ("aws", "{{provider: aws, region: us-east-1, prefix: bench/{env}}}")):
            root = Path(tmp) / provider
            root.mkdir()
            write_catalog(root / "catalog.yaml", args.keys, args.group_size)
            write_config(root, store)
            project = Project.load(cwd=root)
            rows.append((provider, run(project, counter)))
        reference = guide_way(bao_addr, bao.token, args.keys)

    print(f"{args.keys} keys x {len(ENVS)} environments\n")
    print(f"{'store':6} {'objects':>7} {'provision s':>11} {'writes/obj':>10} "
          f"{'req/obj':>8} {'verify s':>9} {'reads/obj':>9} {'reads/key':>9}")
    for provider, f in rows:
        objs = f["objects"]
        print(f"{provider:6} {objs:7d} {f['provision_s']:11.3f} "
              f"{f['provision_writes'] / objs:10.2f} {f['provision_requests'] / objs:8.2f} "
              f"{f['verify_s']:9.3f} {f['verify_requests'] / objs:9.2f} "
              f"{f['verify_requests'] / (args.keys * len(ENVS)):9.4f}")
    print("(provision req/obj = one read to plan + the write; Vault adds one mount check "
          "per connection)")
    vault = rows[0][1]
    print(f"\nguide's way on OpenBao (bao kv put, values in argv): {reference:.3f} s")
    print(f"ratio deparrow-secrets provision / guide's way (OpenBao): "
          f"{vault['provision_s'] / reference:.2f}")
    print("(the guide's way puts every value on a command line, visible in `ps`)")

    print(f"\nKey Vault store, {args.kv_writes} sequential updates of one secret (fake):")
    print(f"{'read lag s':>10} {'s/update':>9} {'req/update':>10}")
    for lag in (0.0, 0.2):
        per_write, requests = key_vault_updates(args.kv_writes, lag)
        print(f"{lag:10.1f} {per_write:9.3f} {requests:10.1f}")
    print("(under lag each update waits until its own version shows, then judges the race)")


if __name__ == "__main__":
    main()
