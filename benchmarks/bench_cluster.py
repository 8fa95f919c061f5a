"""The cluster commands against the fake API server (tests/fakes), with moto as the store.

    python benchmarks/bench_cluster.py [--small 10] [--large 1000] [--keys 1000] [--strict]

1. doctor with SMALL and with LARGE ExternalSecrets, target Secrets and Deployments
   (with their ReplicaSets and pods), every one synced and healthy: API requests
   (target: equal) and wall time (target: LARGE within 3x of SMALL), in one run.
2. deploy of production with KEYS catalog keys (10 Kubernetes Secrets) from an empty
   namespace to hash-verified sync: API requests and wall time, with the ESO simulator's
   work (reconciles, store reads, Secret writes, its time) reported apart.

The API server is the test tree's fake (HTTPS, real client library); the ESO simulator
works in-process through the fake's Python API, so its work is not in the API counts.
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchsetup import NS, eso_cluster, kubeconfig, rendered_project, simulator_figures

from deparrow_secrets.cluster.datahash import eso_data_hash  # noqa: E402
from deparrow_secrets.cluster.official import connect  # noqa: E402
from deparrow_secrets.operations.deploy import deploy  # noqa: E402
from deparrow_secrets.operations.doctor import doctor  # noqa: E402
from deparrow_secrets.project import Project  # noqa: E402
from deparrow_secrets.render.manifests import eso_objects  # noqa: E402
from fakes.eso_simulator import EsoSimulator, synced_resource_version  # noqa: E402
from fakes.kube_apiserver import FakeKubeApiServer  # noqa: E402
from fakes.kube_objects import deployment  # noqa: E402
from fakes.workload_simulator import WorkloadSimulator  # noqa: E402
from servers import MotoServer  # noqa: E402

RUNS = 5  # doctor runs per size (median): this machine is shared


def write_project(root: Path, keys: int, secrets_count: int) -> Project:
    lines = ["values:"]
    for i in range(keys):
        lines += [f"  KEY_{i:04d}:", "    requirement: required", "    source: generated",
                  "    generate: {length: 16}"]
    lines.append("secrets:")
    per = max(1, keys // secrets_count)
    for n, start in enumerate(range(0, keys, per)):
        lines.append(f"  app-{n:04d}:")
        lines += [f"    - KEY_{i:04d}" for i in range(start, min(keys, start + per))]
    return rendered_project(
        root, "catalog: catalog.yaml\nenvironments:\n  production:\n    store: {provider: "
        "aws, region: us-east-1, accountId: '210987654321', roleArn: "
        f"'arn:aws:iam::210987654321:role/bench', prefix: bench-{secrets.token_hex(3)}}}\n",
        catalog="\n".join(lines) + "\n", provision="production")


def healthy_state(api: FakeKubeApiServer, project: Project) -> None:
    """What a converged ESO leaves: objects applied, Secrets written, statuses Ready."""
    env = project.environment("production")
    layout = project.layout(env)
    with project.open_store(env) as store:
        read = layout.read(store)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for obj in eso_objects(project.config, project.catalog, env):
        stored = api.put(obj)
        if obj["kind"] == "SecretStore":
            stored["status"] = {"conditions": [{"type": "Ready", "status": "True",
                                                "reason": "Valid"}]}
            api.update_status(stored)
        if obj["kind"] != "ExternalSecret":
            continue
        target = obj["spec"]["target"]["name"]
        data = {d["secretKey"]: read[d["secretKey"]].value.reveal().encode()  # type: ignore
                for d in obj["spec"]["data"]}
        api.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": target, "namespace": NS,
                              "labels": {"reconcile.external-secrets.io/managed": "true"},
                              "annotations": {"reconcile.external-secrets.io/data-hash":
                                              eso_data_hash(data)}},
                 "data": {k: base64.b64encode(v).decode() for k, v in data.items()}})
        stored["status"] = {"refreshTime": now,
                            "syncedResourceVersion": synced_resource_version(stored),
                            "conditions": [{"type": "Ready", "status": "True",
                                            "reason": "SecretSynced"}]}
        api.update_status(stored)
        api.event(stored, "Created", "secret created")
        dep = deployment(f"{target}-app", NS, {"app": target})
        dep["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"secretRef": {"name": target}}]
        api.put(dep)
    WorkloadSimulator(api).reconcile_once()


@contextmanager
def api_wait(client: Any) -> Iterator[list[float]]:
    """Time spent inside API requests (the server's answer, transfer and JSON decoding)."""
    waited = [0.0]
    original = client._request

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            waited[0] += time.perf_counter() - began

    client._request = timed
    try:
        yield waited
    finally:
        del client._request


def _serve(tmp: str, project_root: str, ready: Any, stop: Any) -> None:
    """Child process: the fake API server with a healthy production, until `stop`."""
    project = Project.load(Path(project_root) / "deparrow-secrets.yaml")
    with eso_cluster(Path(tmp) / "kube") as api:
        healthy_state(api, project)
        ready.set()
        stop.wait()


def bench_doctor(n: int, store_env: dict[str, str]) -> dict[str, Any]:
    """The API server runs in its own process (as a real one runs elsewhere), so its
    work of serializing thousands of objects does not share the tool's interpreter."""
    import multiprocessing

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = write_project(tmp, n, n)
        ctx = multiprocessing.get_context("fork")
        ready, stop = ctx.Event(), ctx.Event()
        server = ctx.Process(target=_serve, args=(tmp_name, tmp_name, ready, stop))
        server.start()
        try:
            if not ready.wait(600):
                raise RuntimeError("the fake API server did not come up")
            env = project.environment("production")
            client = connect(kubeconfig(tmp / "kube"))
            doctor(project, env, client, lambda: project.open_store(env))  # warm-up
            walls, waits = [], []
            for _ in range(RUNS):
                # Each run starts as a new process would, without the cyclic garbage of
                # the runs before it (each opens a boto3 client): otherwise one run in two
                # pays a full collection of everything earlier runs left.
                gc.collect()
                with api_wait(client) as waited:
                    began = time.perf_counter()
                    report = doctor(project, env, client, lambda: project.open_store(env))
                    walls.append(time.perf_counter() - began)
                waits.append(waited[0])
            client.close()
            return {"n": n, "apiCalls": report.api_calls, "wall": statistics.median(walls),
                    "apiWait": statistics.median(waits),
                    "tool": statistics.median(w - a for w, a in zip(walls, waits, strict=True)),
                    "findings": [f.rule for f in report.findings], "checked": report.checked}
        finally:
            stop.set()
            server.join(30)


def bench_deploy(keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = write_project(tmp, keys, 10)
        env = project.environment("production")
        with eso_cluster(tmp / "kube") as api:
            sim = EsoSimulator(api, lambda store_obj: project.open_store(env), interval=0.05)
            try:
                sim.start()
                client = connect(kubeconfig(tmp / "kube"))
                began = time.perf_counter()
                result = deploy(project, env, client, lambda: project.open_store(env),
                                timeout=600, poll=0.2)
                wall = time.perf_counter() - began
                again_began = time.perf_counter()
                again = deploy(project, env, client, lambda: project.open_store(env),
                               timeout=60, poll=0.2)
                again_wall = time.perf_counter() - again_began
                client.close()
                return {"keys": keys, "secrets": len(result.secrets),
                        "converged": result.converged, "apiCalls": result.api_calls,
                        "wall": wall, "waited": result.waited,
                        "secondApiCalls": again.api_calls, "secondWall": again_wall,
                        "secondChanged": again.changed, **simulator_figures(sim)}
            finally:
                sim.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as moto_dir, MotoServer(Path(moto_dir)) as moto:
        os.environ.update(moto.env())
        small = bench_doctor(args.small, moto.env())
        large = bench_doctor(args.large, moto.env())
        dep = bench_deploy(args.keys)
    ok = True
    print("doctor, healthy production (ESO objects, Secrets, Deployments, pods each):")
    print(f"  {'objects':>8} {'API calls':>10} {'median':>9} {'in API':>9} {'tool':>9} "
          f"{'checked':>8} findings")
    for r in (small, large):
        print(f"  {r['n']:>8} {r['apiCalls']:>10} {r['wall'] * 1000:>7.0f}ms "
              f"{r['apiWait'] * 1000:>7.0f}ms {r['tool'] * 1000:>7.0f}ms "
              f"{r['checked']:>8} {len(r['findings'])}")
    calls_equal = small["apiCalls"] == large["apiCalls"]
    ratio = large["wall"] / small["wall"]
    print(f"  API calls equal: {'yes' if calls_equal else 'NO'} (target: equal)")
    print(f"  wall time ratio {args.large}/{args.small}: {ratio:.2f}x (target: <= 3x)")
    ok &= calls_equal and ratio <= 3 and not small["findings"] and not large["findings"]
    print(f"\ndeploy production, {dep['keys']} catalog keys in {dep['secrets']} Secrets, "
          "empty namespace -> hash-verified sync:")
    print(f"  converged: {dep['converged']}; API calls {dep['apiCalls']}; wall "
          f"{dep['wall']:.2f}s (waiting for ESO {dep['waited']:.2f}s)")
    print(f"  ESO simulator (apart): {dep['simReconciles']} reconciles, {dep['simStoreReads']} "
          f"store reads, {dep['simWrites']} writes, {dep['simTime']:.2f}s in reconcile loops")
    print(f"  second deploy: changed={dep['secondChanged']}, API calls "
          f"{dep['secondApiCalls']}, wall {dep['secondWall']:.2f}s")
    ok &= bool(dep["converged"]) and not dep["secondChanged"]
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
