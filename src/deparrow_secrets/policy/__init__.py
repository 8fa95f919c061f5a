"""Identity and least privilege per environment: what `policy` prints, what `setup` applies.

Each provider plans its identity (`Provider.identity_plan` -> Plan: the artefacts:
policies, roles, manifests, commands) and sets it up (`Provider.identity_setup` ->
SetupReport: apply what can be applied from here, idempotently). Every plan also
carries the External Secrets Operator install guidance, the same for every provider.

Environments are assumed to have separate stores (the default): every grant names one
environment's objects only. Provider SDKs are imported only by `setup`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deparrow_secrets import providers
from deparrow_secrets.errors import InputError
from deparrow_secrets.providers.identity_plan import Options, Piece, Plan, SetupReport

if TYPE_CHECKING:
    from deparrow_secrets.config.settings import Config, EnvironmentConfig

__all__ = ["ESO_VERSION", "Options", "Plan", "SetupReport", "build_plan", "eso_install",
           "run_setup"]

ESO_VERSION = "2.9.0"  # the CRDs the manifests are validated against
ESO_NAMESPACE = "external-secrets"
ESO_API_VERSION = "v1"


def eso_install() -> Piece:
    """How to install ESO so that the rendered manifests work (once per cluster)."""
    bundle = (f"https://raw.githubusercontent.com/external-secrets/external-secrets/"
              f"v{ESO_VERSION}/deploy/crds/bundle.yaml")
    steps = [
        {"title": "Helm (installs and upgrades the CRDs itself)",
         "commands": [
             "helm repo add external-secrets https://charts.external-secrets.io",
             "helm repo update external-secrets",
             f"helm install external-secrets external-secrets/external-secrets "
             f"--namespace {ESO_NAMESPACE} --create-namespace --version {ESO_VERSION}"]},
        {"title": "Or CRDs managed outside Helm: server-side apply (the bundle exceeds the "
                  "client-side annotation limit), then the chart without CRDs",
         "commands": [
             f"kubectl apply --server-side -f {bundle}",
             f"helm install external-secrets external-secrets/external-secrets "
             f"--namespace {ESO_NAMESPACE} --create-namespace --version {ESO_VERSION} "
             "--set installCRDs=false"]},
        {"title": f"Verify: pods in the release namespace {ESO_NAMESPACE} (not "
                  "external-secrets-system), and the served API version is v1",
         "commands": [
             f"kubectl get pods --namespace {ESO_NAMESPACE}",
             "kubectl get crd externalsecrets.external-secrets.io -o "
             "jsonpath='{.spec.versions[?(@.served==true)].name}'"]},
    ]
    data = {
        "summary": (f"External Secrets Operator {ESO_VERSION} or newer (any release since "
                    f"0.17 serves external-secrets.io/{ESO_API_VERSION}, which the rendered "
                    "manifests use; v1beta1 is no longer served)."),
        "namespace": ESO_NAMESPACE,
        "version": ESO_VERSION,
        "apiVersion": f"external-secrets.io/{ESO_API_VERSION}",
        "expectServedVersions": ESO_API_VERSION,
        "steps": steps,
    }
    return Piece("esoInstall", "External Secrets Operator (install once per cluster)",
                 "guide", data,
                 notes=(f"The last command must print: {ESO_API_VERSION}",))


def _check_options(env: EnvironmentConfig, options: Options) -> None:
    """An option set for another provider's identity is a mistake, not something to
    ignore silently."""
    mine = {o.attr for o in providers.of(env).identity_options}
    declared = providers.identity_options(setup=True)
    for attr in options.given():
        if attr in mine:
            continue
        option = declared.options.get(attr)
        if option is None:
            raise InputError(f"no provider takes the option {attr}",
                             hint="providers: " + ", ".join(providers.names()))
        raise InputError(f"{option.flag} applies to {' and '.join(declared.takers[attr])} "
                         f"environments; {env.name} uses {env.provider}")


def build_plan(config: Config, env: EnvironmentConfig, options: Options | None = None) -> Plan:
    """Everything environment `env` needs for its identity, as data."""
    options = options or Options()
    provider = providers.of(env)
    _check_options(env, options)
    plan = provider.identity_plan(config, env, options)
    plan.pieces.append(eso_install())
    return plan


def run_setup(config: Config, env: EnvironmentConfig,
              options: Options | None = None) -> SetupReport:
    """Apply what can be applied from here (Azure: only print the commands)."""
    options = options or Options()
    provider = providers.of(env)
    _check_options(env, options)
    return provider.identity_setup(config, env, options)
