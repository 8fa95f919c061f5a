"""Run the practice checks for one environment; each check gives one verdict per
practice and provider (the store's and the cluster's), in the guide's order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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

    def findings(self) -> list[Finding]:
        return [v.finding(self.environment) for v in self.verdicts]

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v.verdict == verdict)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0


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


__all__ = ["PASS", "FAIL", "UNKNOWN", "PRACTICES", "PostureReport", "run_posture"]
