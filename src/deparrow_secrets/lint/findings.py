"""Findings and the registry of rules (lint and scan share both).

A rule id is stable: it is what `--ignore`, inline ignore comments and SARIF consumers
key on. Messages and fixes never contain a secret value: a Secret's data, a literal or
a found value is named by its key only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    """One line: what the rule finds."""
    fix: str
    """The general fix; a finding may carry a more specific one."""
    tool: str = "lint"
    """"lint" or "scan"."""


@dataclass
class Finding:
    rule: str
    severity: str
    file: str
    """Path as shown to the user (relative to the working directory when inside it)."""
    line: int | None
    message: str
    fix: str
    key_path: str = ""
    commit: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    """Extra facts for json/SARIF (key name, environment, encoding, redacted excerpt)."""
    resource: str = ""
    """A cluster object instead of (or besides) a file: `Kind namespace/name` (doctor)."""

    def sort_key(self) -> tuple[Any, ...]:
        return (self.commit is not None, self.file, self.line or 0, self.rule, self.key_path,
                self.message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "severity": self.severity, "file": self.file,
                               "line": self.line}
        if self.commit:
            out["commit"] = self.commit
        if self.key_path:
            out["keyPath"] = self.key_path
        if self.resource:
            out["resource"] = self.resource
        out["message"] = self.message
        out["fix"] = self.fix
        out.update(self.properties)
        return out


_RULES = [
    # ------------------------------------------------------------------ manifests (schema)
    Rule("yaml-invalid", ERROR, "A YAML (or JSON) file that cannot be parsed.",
         "Fix the syntax at the reported line."),
    Rule("file-unreadable", ERROR,
         "A file lint was asked to check and cannot read: not UTF-8, over the size limit, "
         "or not readable.",
         "Make it UTF-8 text of a sensible size (or exclude it from the paths linted)."),
    Rule("eso-v1beta1", ERROR,
         "An External Secrets Operator kind in external-secrets.io/v1beta1, which ESO no "
         "longer serves since 0.17 (kubectl: \"no matches for kind\").",
         "Change apiVersion to external-secrets.io/v1."),
    Rule("eso-unknown-field", ERROR,
         "A field the ESO CRD schema does not define under an ESO kind; ESO's CRDs do not "
         "reject it, they ignore it (the guide's `authManagedIdentity`).",
         "Remove or rename the field as the message says."),
    Rule("manifest-schema", ERROR,
         "Any other schema violation: ESO kinds against the ESO v2.9 CRDs, built-in kinds "
         "against the Kubernetes API schemas, kustomization fields.",
         "Fix the field as the message says."),
    # ------------------------------------------------------------------ embedded values
    Rule("secret-data-outside-dev", ERROR,
         "A Kubernetes Secret with `data` or `stringData` outside the dev overlay: the "
         "value is committed with the manifests.",
         "Put the values in the environment's store and let an ExternalSecret create the "
         "Secret; embedded Secrets belong only in the dev overlay."),
    Rule("generator-literals-outside-dev", ERROR,
         "A kustomize secretGenerator with `literals` outside the dev overlay.",
         "Use an ExternalSecret in this environment; in dev, use `envs:` with the files "
         "`deparrow-secrets export` writes (git-ignored)."),
    Rule("placeholder-value", ERROR,
         "A value that looks like a placeholder (`your-...`, `changeme`, `<...>`, "
         "`REPLACE_ME`, `example`, `xxx`, `TODO`, `ACCOUNT_ID`, AWS's documentation account "
         "123456789012) in Secret data, secretGenerator literals, env files, ESO objects, "
         "ServiceAccount annotations, policies or the configuration. Secret values are "
         "reported by key name only.",
         "Replace it with the real value (secrets: in the store, via `deparrow-secrets set` "
         "or `provision`)."),
    # ------------------------------------------------------------------ stores
    Rule("store-shared-between-envs", ERROR,
         "Two environments that use the same store location (configuration), the same "
         "SecretStore target or the same remote paths (manifests), or an environment "
         "that reads another environment's path.",
         "Give each environment its own store location (path, prefix or Key Vault)."),
    Rule("missing-service-account-ref", ERROR,
         "A SecretStore whose provider's auth needs a `serviceAccountRef` and lacks it: AWS "
         "(IRSA: auth.jwt.serviceAccountRef), Azure workload identity, Vault kubernetes auth. "
         "Without it ESO authenticates as its own controller.",
         "Add the serviceAccountRef naming the ServiceAccount that carries the identity "
         "(`deparrow-secrets render` writes it)."),
    Rule("refresh-disabled", WARNING,
         "An ExternalSecret (or environment) that never refreshes: `refreshInterval: 0` or "
         "`refreshPolicy: CreatedOnce`; rotated values never reach the cluster and "
         "force-sync annotations are ignored.",
         "Use `refreshPolicy: Periodic` (the default) with an interval such as 1h."),
    Rule("azure-tenant-twice", ERROR,
         "An Azure workload identity SecretStore with `tenantId` whose ServiceAccount also "
         "carries the `azure.workload.identity/tenant-id` annotation: ESO refuses it "
         "(\"multiple tenantID found\", providers/v1/azure/keyvault/keyvault.go), so the "
         "store is never Ready.",
         "Give the tenant once: drop `tenantId` from the SecretStore and keep the "
         "ServiceAccount annotation, as ESO's workload identity example does."),
    # ------------------------------------------------------------------ catalog
    Rule("azure-name-underscore", ERROR,
         "An Azure Key Vault remote name with an underscore; Key Vault names allow only "
         "0-9, a-z, A-Z and -.",
         "Use dashes for underscores (DEPARROW_JWT_SECRET is DEPARROW-JWT-SECRET)."),
    Rule("catalog-key-missing", ERROR,
         "A catalog key an environment needs that none of its ExternalSecrets provides.",
         "Add it to the ExternalSecret (or run `deparrow-secrets render`)."),
    Rule("ha-key-missing", ERROR,
         "A key required in HA environments (POSTGRES_REPLICATION_PASSWORD) missing from "
         "an HA environment's ExternalSecrets.",
         "Add it to the ExternalSecret (or run `deparrow-secrets render`)."),
    Rule("target-not-consumed", WARNING,
         "An ExternalSecret whose target Secret no workload deployed with it references "
         "(one kustomization's build, with its name prefix and suffix, or one file; "
         "silent when no workload is in scope).",
         "Reference the Secret from the workload (envFrom, secretKeyRef, volume) or remove "
         "the ExternalSecret; check the target name for typos."),
    # ------------------------------------------------------------------ policies
    Rule("policy-too-broad", ERROR,
         "An IAM or Vault policy whose resources cover more than one environment "
         "(`deparrow/*`, `*`, NotResource).",
         "Scope it to one environment: arn:...:secret:deparrow/<env>/* or "
         "secret/data/deparrow/<env>."),
    Rule("policy-wildcard-action", ERROR,
         "An IAM policy with wildcard actions (`secretsmanager:*`, `*`, `Get*`, NotAction) "
         "or a Vault policy granting sudo/root.",
         "List the actions ESO needs: secretsmanager:GetSecretValue (DescribeSecret only "
         "for metadataPolicy: Fetch and PushSecret; Vault: read)."),
    # ------------------------------------------------------------------ scan
    Rule("known-value", ERROR,
         "A secret value of the environment (or its base64 form) found in a file of the "
         "working tree.",
         "Remove it from the file (reference the Kubernetes Secret or the store instead); "
         "if the file was ever committed, pushed or shared, rotate the value.",
         tool="scan"),
    Rule("known-value-in-history", ERROR,
         "A secret value of the environment (or its base64 form) found in a commit of the "
         "git history (added lines or the commit message).",
         "Rotate the value now: every clone keeps the history. Then rewrite history "
         "(git filter-repo --replace-text) if the old value must not remain.",
         tool="scan"),
    Rule("generic-secret", WARNING,
         "A string that detect-secrets' plugins recognise as a secret (known token formats, "
         "high-entropy strings, keyword assignments).",
         "If it is a secret, move it to the store and rotate it; if it is not, mark the line "
         "with `# pragma: allowlist secret`.",
         tool="scan"),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}
LINT_RULES = [r for r in _RULES if r.tool == "lint"]
SCAN_RULES = [r for r in _RULES if r.tool == "scan"]


# --------------------------------------------------------------------------- doctor
# The cluster chain store -> SecretStore -> ExternalSecret -> Secret -> workloads. Kept
# out of RULES so lint's and scan's rule lists stay as they are; `refresh-disabled`
# is shared with lint (same problem, found in the cluster instead of a file).
_DOCTOR_RULES = [
    Rule("eso-not-installed", ERROR,
         "External Secrets Operator is not installed: discovery does not serve the "
         "external-secrets.io API group.",
         "helm upgrade --install external-secrets external-secrets/external-secrets "
         "-n external-secrets --create-namespace", tool="doctor"),
    Rule("eso-v1-not-served", ERROR,
         "ESO is installed but does not serve external-secrets.io/v1 (a release before "
         "0.17, v1beta1 objects only); the rendered manifests cannot be applied.",
         "Upgrade ESO (0.17 or later serves v1), then run `deparrow-secrets deploy`.",
         tool="doctor"),
    Rule("eso-pod-not-running", ERROR,
         "An ESO component (controller, webhook, cert-controller) has no running, ready pod "
         "in namespace external-secrets; with the webhook down, creating or updating an "
         "ExternalSecret fails.",
         "kubectl -n external-secrets describe pods -l app.kubernetes.io/name=COMPONENT, "
         "and fix what its events and logs say.", tool="doctor"),
    RULES["refresh-disabled"],
    Rule("secretstore-missing", ERROR, "The environment's SecretStore does not exist.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("secretstore-not-ready", ERROR,
         "The SecretStore is not Ready: ESO cannot authenticate to the store (the detail "
         "comes from its Warning Events).",
         "Check the identity with `deparrow-secrets policy --env ENV` and apply it with "
         "`deparrow-secrets setup --env ENV`.", tool="doctor"),
    Rule("externalsecret-missing", ERROR, "An ExternalSecret the rendering has is absent.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("externalsecret-not-ready", ERROR,
         "An ExternalSecret is not Ready; the real error is in its UpdateFailed Events.",
         "Fix what the error names (a key missing in the store: `deparrow-secrets "
         "provision --env ENV`).", tool="doctor"),
    Rule("secret-missing", ERROR, "A target Secret of the environment does not exist.",
         "Fix the ExternalSecret that creates it, or `deparrow-secrets deploy --env ENV`.",
         tool="doctor"),
    Rule("secret-key-missing", ERROR,
         "A target Secret lacks keys the catalog puts in it.",
         "deparrow-secrets render, commit, then deparrow-secrets deploy --env ENV",
         tool="doctor"),
    Rule("secret-out-of-sync", ERROR,
         "A target Secret's data differs from the store's values (by hash): the store "
         "changed since ESO's last refresh.",
         "deparrow-secrets deploy --env ENV (forces a refresh and verifies it)",
         tool="doctor"),
    Rule("secret-edited-in-cluster", WARNING,
         "A managed Secret's data was edited in the cluster (it no longer matches ESO's "
         "data-hash annotation); ESO overwrites the edit on its next sync.",
         "Change values in the store (`deparrow-secrets set KEY --env ENV`), never in the "
         "Secret.", tool="doctor"),
    Rule("serviceaccount-missing", ERROR,
         "The ServiceAccount the SecretStore authenticates as does not exist.",
         "deparrow-secrets deploy --env ENV", tool="doctor"),
    Rule("serviceaccount-identity-mismatch", ERROR,
         "The ServiceAccount's identity annotations (role ARN, Azure client/tenant id) are "
         "not exactly the ones the configuration renders.",
         "deparrow-secrets deploy --env ENV (or kubectl annotate as the message says)",
         tool="doctor"),
    Rule("auth-delegator-missing", ERROR,
         "Vault's kubernetes auth reviews tokens with the ServiceAccount's own JWT, which "
         "needs the system:auth-delegator ClusterRoleBinding; it is missing or binds "
         "something else.",
         "deparrow-secrets deploy --env ENV (needs permission to create "
         "ClusterRoleBindings)", tool="doctor"),
    Rule("store-unreachable", ERROR,
         "The tool cannot read the store with its own credentials (ESO's `Valid` proves "
         "nothing for Azure, and little elsewhere).",
         "Fix what the message names, then rerun doctor.", tool="doctor"),
    Rule("store-key-missing", ERROR, "A key the environment needs is missing in the store.",
         "deparrow-secrets provision --env ENV", tool="doctor"),
    Rule("workload-secret-missing", ERROR,
         "A workload references a Secret that does not exist (and is not optional): its "
         "pods cannot start.",
         "Create the Secret or correct the name in the workload.", tool="doctor"),
    Rule("workload-key-missing", ERROR,
         "A workload references a key its Secret does not have (and is not optional).",
         "Correct the key in the workload or add the key to the catalog.", tool="doctor"),
    Rule("subpath-mount", WARNING,
         "A Secret mounted with subPath: the file is copied once and never receives "
         "updates, so rotated values never arrive.",
         "Mount the volume without subPath and read the file from that directory (or "
         "restart the workload after every change).", tool="doctor"),
    Rule("pod-stale-env", WARNING,
         "A pod started before its Secret's data last changed, and reads it through "
         "environment variables (or a subPath): it still holds the old values.",
         "kubectl rollout restart the workload (deparrow-secrets impact names them).",
         tool="doctor"),
]
DOCTOR_RULES = _DOCTOR_RULES
DOCTOR_RULE_IDS = {r.id: r for r in _DOCTOR_RULES}


# --------------------------------------------------------------------------- posture
# The guide's seven security practices (`posture`): one rule per practice, its id is
# what `posture --ignore` takes. A posture finding is a verdict (pass, fail, unknown)
# with evidence; its severity is error for fail, warning for unknown, note for pass.
_POSTURE_RULES = [
    Rule("audit-logging", ERROR,
         "The store records who read and changed secrets: a Vault/OpenBao audit device, an "
         "AWS CloudTrail trail with Secrets Manager management events in the region, the "
         "Key Vault AuditEvent diagnostic setting, the embedded store's change ledger.",
         "deparrow-secrets setup --env ENV --audit", tool="posture"),
    Rule("rotation-age", ERROR,
         "Every value with a `maxAge` in the catalog is younger than it (the age comes from "
         "the store's version dates; values without maxAge are never due).",
         "deparrow-secrets rotate --due --env ENV", tool="posture"),
    Rule("encryption-at-rest", ERROR,
         "Secrets are encrypted at rest: the embedded store's AEAD and key file, the AWS "
         "secrets' KMS key and the IAM policy covering it, Key Vault's SKU, Vault's seal "
         "and storage, and etcd encryption of the cluster's Secrets.",
         "Follow the fix of the finding (it names the command).", tool="posture"),
    Rule("network-isolation", ERROR,
         "The application namespace has a default-deny NetworkPolicy (ingress, and egress "
         "when `networkPolicy.egress` is configured) and ESO's namespace restricts egress.",
         "Set `networkPolicy:` in deparrow-secrets.yaml, `deparrow-secrets render`, commit "
         "and `deparrow-secrets deploy --env ENV`.", tool="posture"),
    Rule("nothing-committed", ERROR,
         "No secret value is committed: lint's embedded-value rules over the manifests and "
         "the configuration, and scan of the working tree for the environment's values.",
         "deparrow-secrets lint and deparrow-secrets scan --env ENV name each file and key; "
         "move the value to the store and rotate it.", tool="posture"),
    Rule("least-privilege", ERROR,
         "ESO's identity can read one environment's secrets and nothing more: lint's policy "
         "rules over the committed policies, and the scope of the policy the tool renders.",
         "deparrow-secrets policy --env ENV prints the scoped policy; deparrow-secrets "
         "setup --env ENV applies it.", tool="posture"),
    Rule("separate-stores", ERROR,
         "Each environment has its own store location: lint's store rule over manifests and "
         "configuration, and verify's check of the configured locations.",
         "Give each environment its own store location (path, prefix or Key Vault).",
         tool="posture"),
]
POSTURE_RULES = _POSTURE_RULES
POSTURE_RULE_IDS = {r.id: r for r in _POSTURE_RULES}
