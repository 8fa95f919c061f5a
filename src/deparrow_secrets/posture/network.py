"""Network isolation, read through the cluster layer (one list per namespace).

- the application namespace has a default-deny NetworkPolicy for ingress (a policy
  selecting every pod, `podSelector: {}`, with policyType Ingress and no ingress rule),
  and for egress too when the configuration's `networkPolicy.egress` asks for it;
- ESO's namespace (`external-secrets`) restricts egress: a policy with policyType
  Egress that selects ESO's controller (every pod, or app.kubernetes.io/name=
  external-secrets).
Without a cluster the verdict is unknown, with the options that give one.
"""

from __future__ import annotations

from deparrow_secrets.cluster.api import Kind, KubeClient, Obj
from deparrow_secrets.cluster.state import ESO_NAMESPACE
from deparrow_secrets.config.settings import Config, EnvironmentConfig
from deparrow_secrets.errors import DeparrowError
from deparrow_secrets.findings import ERROR, Rule, declare
from deparrow_secrets.posture.model import FAIL, PASS, UNKNOWN, Verdict

(RULE,) = declare(
    Rule("network-isolation", ERROR,
         "The application namespace has a default-deny NetworkPolicy (ingress, and egress "
         "when `networkPolicy.egress` is configured) and ESO's namespace restricts egress.",
         "Set `networkPolicy:` in deparrow-secrets.yaml, `deparrow-secrets render`, commit "
         "and `deparrow-secrets deploy --env ENV`.", tool="posture"),
)

PRACTICE = RULE.id
NETWORK_POLICY = Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies")
ESO_CONTROLLER = "external-secrets"
NO_CLUSTER = "no cluster given"


def no_cluster(env: EnvironmentConfig, problem: str | None = None) -> Verdict:
    """Unknown: no cluster given, or the one found (~/.kube/config, in-cluster) unusable."""
    evidence = [f"the kubeconfig found cannot be used: {problem}"] if problem else \
        ["no --kubeconfig, --context, $KUBECONFIG or ~/.kube/config"]
    return Verdict(PRACTICE, "cluster", UNKNOWN, "NetworkPolicies not checked", evidence,
                   fix=f"deparrow-secrets posture --env {env.name} --kubeconfig FILE "
                   "[--context NAME]", reason=problem[:200] if problem else NO_CLUSTER)


def _types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return {str(t) for t in types}
    # The API server's default: Ingress, plus Egress when egress rules are given.
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _selects_all(policy: Obj) -> bool:
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _selects_eso(policy: Obj) -> bool:
    if _selects_all(policy):
        return True
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return (selector.get("matchLabels") or {}).get("app.kubernetes.io/name") == ESO_CONTROLLER


def _name(policy: Obj) -> str:
    return str((policy.get("metadata") or {}).get("name"))


def default_deny(policies: list[Obj], direction: str) -> list[str]:
    """Names of policies denying every `direction` ("Ingress"/"Egress") by default."""
    rules = direction.lower()
    return sorted(_name(p) for p in policies
                  if _selects_all(p) and direction in _types(p)
                  and not (p.get("spec") or {}).get(rules))


def check(config: Config, env: EnvironmentConfig, client: KubeClient) -> Verdict:
    ns = config.namespace
    want_egress = bool(config.network_policy and config.network_policy.egress)
    try:
        app = client.list_objects(NETWORK_POLICY, ns)
        eso = client.list_objects(NETWORK_POLICY, ESO_NAMESPACE)
    except DeparrowError as exc:
        return Verdict(PRACTICE, "cluster", UNKNOWN, "NetworkPolicies not readable",
                       [f"list networkpolicies: {exc.message}"],
                       fix=exc.hint or "fix the cluster access, then rerun",
                       reason=exc.message[:200])
    evidence = [f"namespace {ns}: {len(app)} NetworkPolicy(ies)"
                + (f" ({', '.join(sorted(_name(p) for p in app))})" if app else ""),
                f"namespace {ESO_NAMESPACE}: {len(eso)} NetworkPolicy(ies)"
                + (f" ({', '.join(sorted(_name(p) for p in eso))})" if eso else "")]
    problems: list[str] = []
    deny_in = default_deny(app, "Ingress")
    if deny_in:
        evidence.append(f"default-deny ingress in {ns}: {', '.join(deny_in)}")
    else:
        problems.append(f"no default-deny ingress policy in namespace {ns}")
    if want_egress:
        deny_out = default_deny(app, "Egress")
        if deny_out:
            evidence.append(f"default-deny egress in {ns}: {', '.join(deny_out)}")
        else:
            problems.append(f"no default-deny egress policy in namespace {ns} "
                            "(networkPolicy.egress is set)")
    eso_egress = sorted(_name(p) for p in eso if "Egress" in _types(p) and _selects_eso(p))
    if eso_egress:
        evidence.append(f"egress of ESO restricted by: {', '.join(eso_egress)}")
    else:
        problems.append(f"nothing restricts the egress of ESO in namespace {ESO_NAMESPACE}")
    if problems:
        tree = config.manifests
        apply = (f"kubectl apply -f {tree}/base/network-policy.yaml"
                 + (f" && kubectl apply -k {tree}/eso/{env.name}" if env.uses_eso else ""))
        fix = (f"apply the rendered policies: {apply}" if config.network_policy is not None
               else "add `networkPolicy: {}` (or with `egress: true`, `apiServer:` and "
               "`store:` CIDRs) to deparrow-secrets.yaml, run deparrow-secrets render, "
               f"commit, then {apply}")
        return Verdict(PRACTICE, "cluster", FAIL, "; ".join(problems), evidence, fix=fix)
    return Verdict(PRACTICE, "cluster", PASS, f"namespace {ns} denies by default and ESO's "
                   "egress is restricted", evidence)
