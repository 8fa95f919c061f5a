"""Run the practice checks for one environment; each check gives one verdict per
practice and provider (the store's and the cluster's), in the guide's order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deparrow_secrets.cluster.api import KubeClient
from deparrow_secrets.config.settings import EnvironmentConfig
from deparrow_secrets.findings import ERROR, Finding, Rule, declare
from deparrow_secrets.posture import audit, encryption, enforced, network
from deparrow_secrets.posture.model import FAIL, PASS, UNKNOWN, Verdict
from deparrow_secrets.project import Project
from deparrow_secrets.stores.interface import SecretStore

(ROTATION_AGE,) = declare(
    Rule("rotation-age", ERROR,
         "Every value with a `maxAge` in the catalog is younger than it (the age comes from "
         "the store's version dates; values without maxAge are never due).",
         "deparrow-secrets rotate --due --env ENV", tool="posture"),
)

POSTURE_RULES: tuple[Rule, ...] = (audit.RULE, ROTATION_AGE, encryption.RULE, network.RULE,
                                   *enforced.RULES)
"""The guide's seven practices, in its order; a rule id is what `posture --ignore` takes."""
PRACTICES = [r.id for r in POSTURE_RULES]


@dataclass
class PostureReport:
    environment: str
    provider: str
    verdicts: list[Verdict] = field(default_factory=list)
    context: str | None = None
    """The kubeconfig context the network check read (None: no cluster)."""
    ignored: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        return [v.finding(self.environment) for v in self.verdicts]

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v.verdict == verdict)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0

    def to_json(self) -> str:
        from deparrow_secrets.findings.output import render_json

        findings = self.findings()
        return render_json("posture", findings, len(findings), {
            "environment": self.environment, "provider": self.provider,
            "context": self.context,
            "verdicts": {v: self.count(v) for v in (PASS, FAIL, UNKNOWN)},
            "ignored": sorted(set(self.ignored))})

    def to_sarif(self) -> str:
        from deparrow_secrets.findings.output import render_sarif

        return render_sarif(self.findings(), POSTURE_RULES)

    def text_lines(self) -> list[str]:
        out = []
        for v in self.verdicts:
            out.append(f"{v.verdict.upper():8} {v.practice} ({v.provider}): {v.summary}")
            if v.reason:
                out.append(f"    why unknown: {v.reason}")
            out += [f"    evidence: {item}" for item in v.evidence]
            if v.fix:
                out.append(f"    fix: {v.fix}")
        out.append(f"{self.environment} ({self.provider}): {self.count(PASS)} pass, "
                   f"{self.count(FAIL)} fail, {self.count(UNKNOWN)} unknown")
        return out


def rotation_verdict(project: Project, env: EnvironmentConfig, store: SecretStore) -> Verdict:
    from deparrow_secrets.posture.rotation import overdue_keys

    limited = [v for v in project.layout(env).needed() if v.max_age]
    if not limited:
        return Verdict("rotation-age", env.provider, UNKNOWN,
                       "no needed value has a maxAge in the catalog",
                       ["catalog: no `maxAge` on the values of " + env.name],
                       fix="give each value a maximum age in the catalog (`maxAge: 90d`)",
                       reason="nothing says when a value is due")
    due = overdue_keys(project, env, store)
    evidence = [f"{len(limited)} value(s) with a maxAge: "
                + ", ".join(f"{v.name} ({v.max_age})" for v in limited)]
    if due:
        evidence += [f"{d.key}: age {d.age_text} > maxAge {d.max_age}"
                     + (f" (current since {d.since.isoformat()})" if d.since else "")
                     for d in due]
        return Verdict("rotation-age", env.provider, FAIL,
                       f"{len(due)} value(s) older than their maxAge: "
                       + ", ".join(d.key for d in due), evidence,
                       fix=f"deparrow-secrets rotate --due --env {env.name} (or rotate "
                       + " ".join(d.key for d in due) + f" --env {env.name})")
    return Verdict("rotation-age", env.provider, PASS,
                   "every value with a maxAge is younger than it", evidence)


def run_posture(project: Project, env: EnvironmentConfig,
                open_store: Callable[[], SecretStore],
                client: KubeClient | None, ignore: Iterable[str] = (),
                cluster_problem: str | None = None) -> PostureReport:
    """`cluster_problem`: why the kubeconfig found (not given) could not be used."""
    skip = set(ignore)
    report = PostureReport(env.name, env.provider)
    config = project.config

    def want(practice: str) -> bool:
        return practice not in skip

    if want("audit-logging"):
        report.verdicts.append(audit.check(config, env))
    if want("rotation-age"):
        with open_store() as store:
            report.verdicts.append(rotation_verdict(project, env, store))
    if want("encryption-at-rest"):
        report.verdicts.append(encryption.check_store(project, env))
        if env.uses_eso or client is not None:
            report.verdicts.append(encryption.check_cluster(env))
    if want("network-isolation"):
        report.verdicts.append(network.no_cluster(env, cluster_problem) if client is None
                               else network.check(config, env, client))
    if want("nothing-committed") or want("least-privilege") or want("separate-stores"):
        findings, files = enforced.lint_tree(project)
        if want("nothing-committed"):
            report.verdicts.append(enforced.nothing_committed(project, env, findings, files))
        if want("least-privilege"):
            report.verdicts.append(enforced.least_privilege(project, env, findings))
        if want("separate-stores"):
            report.verdicts.append(enforced.separate_stores(project, env, findings))
    return report


def check_posture(project: Project, env: EnvironmentConfig, ignore: Iterable[str] = (),
                  kubeconfig: str | None = None,
                  kube_context: str | None = None) -> PostureReport:
    """`posture` as one call. The network check reads the cluster named (`kubeconfig`,
    `kube_context` or $KUBECONFIG: failing to reach it is an error), else one found
    (~/.kube/config, the in-cluster account: failing to reach it is that check's
    unknown verdict, not the whole command's); none is looked for when it is ignored."""
    from deparrow_secrets.errors import DeparrowError

    ignored = list(ignore)
    asked = bool(kubeconfig or kube_context or os.environ.get("KUBECONFIG"))
    found = Path("~/.kube/config").expanduser().is_file() or \
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    client = None
    cluster_problem = None
    if "network-isolation" not in ignored and (asked or found):
        from deparrow_secrets.cluster.official import connect

        try:
            client = connect(kubeconfig, kube_context)
        except DeparrowError as exc:
            if asked:
                raise
            cluster_problem = exc.message
    try:
        report = run_posture(project, env, lambda: project.open_store(env, create=False),
                             client, ignored, cluster_problem=cluster_problem)
    finally:
        if client is not None:
            client.close()
    report.context = client.context if client is not None else None
    report.ignored = ignored
    return report


__all__ = ["PASS", "FAIL", "UNKNOWN", "PRACTICES", "PostureReport", "check_posture",
           "run_posture"]
