"""The import contract of the package, read from the source with `ast` (nothing is imported).

Every import counts wherever it is written (module level, inside a function, under
TYPE_CHECKING), and so do the lazy forms the package uses for optional dependencies:
`require("hvac", "vault")` and `importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGE = "deparrow_secrets"
LAZY_IMPORTERS = {"require", "import_module"}

# What the stores and the providers may not know about: everything that uses them.
ABOVE_STORES = ("cli", "render", "lint", "operations", "cluster", "posture", "policy", "scan",
                "ledger")
STORE_PACKAGES = ("stores", "providers")
# A provider's SDK (and the HTTP library it is driven through) belongs to that provider's
# package: deparrow_secrets.providers.<provider>.
PROVIDER_SDKS = {"hvac": "vault", "requests": "vault", "boto3": "aws", "botocore": "aws",
                 "azure": "azure"}

# The units whose import graph must have no cycle: the top-level subpackages and
# modules of the package (`project` is what every layer reads: configuration, catalog,
# store layout).


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, src: Path = SRC) -> Iterator[str]:
    """Absolute names of every module `path` imports, at any level of the file.

    `from package import name` also yields `package.name` inside this package: the name
    may be a submodule.
    """
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                assert node.module is not None
                stem = node.module
            yield stem
            if within(stem, PACKAGE):
                yield from (f"{stem}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id in LAZY_IMPORTERS)
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr in LAZY_IMPORTERS))):
            yield node.args[0].value


@functools.cache
def package_imports() -> dict[str, set[str]]:
    files = sorted((SRC / PACKAGE).rglob("*.py"))
    assert len(files) > 50, files
    return {module_name(f): set(imports_of(f)) for f in files}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def unit_graph(imports: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    graph: dict[str, set[str]] = {}
    for importer, imported in (package_imports() if imports is None else imports).items():
        for target in imported:
            if not within(target, PACKAGE) or target == PACKAGE:
                continue
            if unit(importer) != unit(target):
                graph.setdefault(unit(importer), set()).add(unit(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def violations(rule: str, imports: dict[str, set[str]] | None = None) -> list[str]:
    """`importer -> imported` pairs breaking `rule` (see the tests below)."""
    found = []
    for importer, imported in (package_imports() if imports is None else imports).items():
        for target in sorted(imported):
            top = target.split(".")[0]
            if rule == "stores" and any(within(importer, f"{PACKAGE}.{package}")
                                        for package in STORE_PACKAGES):
                bad = any(within(target, f"{PACKAGE}.{up}") for up in ABOVE_STORES)
            elif rule == "click":
                bad = top == "click" and not within(importer, f"{PACKAGE}.cli")
            elif rule == "kubernetes":
                bad = top == "kubernetes" and not within(importer, f"{PACKAGE}.cluster")
            elif rule == "pytest":
                bad = (top == "pytest" or within(target, f"{PACKAGE}.testing")) \
                    and not within(importer, f"{PACKAGE}.testing")
            elif rule == "sdk" and top in PROVIDER_SDKS:
                bad = not within(importer, f"{PACKAGE}.providers.{PROVIDER_SDKS[top]}")
            else:
                bad = False
            if bad:
                found.append(f"{importer} -> {target}")
    return found


def test_the_reader_sees_every_form_of_import(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE / "stores"
    package.mkdir(parents=True)
    source = package / "sample.py"
    source.write_text(
        "import os, click\n"
        "from . import layout\n"
        "from ..cli import common\n"
        "from deparrow_secrets import render\n"
        "def connect():\n"
        "    import hvac.exceptions\n"
        "    from kubernetes import client\n"
        "    boto3 = require('boto3', 'aws')\n"
        "    return importlib.import_module('azure.identity')\n",
        encoding="utf-8")
    assert set(imports_of(source, tmp_path)) == {
        "os", "click", f"{PACKAGE}.stores", f"{PACKAGE}.stores.layout", f"{PACKAGE}.cli",
        f"{PACKAGE}.cli.common", f"{PACKAGE}.render", PACKAGE, "hvac.exceptions",
        "kubernetes", "boto3",
        "azure.identity"}


def test_the_rules_catch_a_violation() -> None:
    real = package_imports()
    vault = f"{PACKAGE}.providers.vault.store"  # a copy: the cached reading stays as it is
    planted = {**real, vault: real[vault] | {f"{PACKAGE}.cli.common", "click",
                                             "kubernetes.client", "botocore.config"}}
    assert violations("stores", planted) == [f"{vault} -> {PACKAGE}.cli.common"]
    assert violations("click", planted) == [f"{vault} -> click"]
    assert violations("kubernetes", planted) == [f"{vault} -> kubernetes.client"]
    assert violations("sdk", planted) == [f"{vault} -> botocore.config"]
    errors = f"{PACKAGE}.errors"
    planted = {**real, errors: real[errors] | {"pytest", f"{PACKAGE}.testing.conformance"}}
    assert violations("pytest", planted) == [f"{errors} -> {PACKAGE}.testing.conformance",
                                             f"{errors} -> pytest"]


def test_stores_import_nothing_that_uses_them() -> None:
    assert violations("stores") == []


def test_only_the_cli_imports_click() -> None:
    assert violations("click") == []
    assert any("click" in imported for module, imported in package_imports().items()
               if within(module, f"{PACKAGE}.cli"))


def test_only_cluster_imports_the_kubernetes_client() -> None:
    assert violations("kubernetes") == []
    assert any(within(module, f"{PACKAGE}.cluster") and "kubernetes" in imported
               for module, imported in package_imports().items())


def test_provider_sdks_only_in_their_provider_modules() -> None:
    """hvac in providers/vault/, botocore in providers/aws/, azure in providers/azure/;
    nothing else in the package touches a provider SDK."""
    assert violations("sdk") == []
    seen = {target.split(".")[0] for imported in package_imports().values()
            for target in imported}
    assert set(PROVIDER_SDKS) <= seen  # the rule is about imports that exist


def test_the_cycle_finder_sees_a_cycle() -> None:
    real = package_imports()
    scan_engine, lint_engine = f"{PACKAGE}.scan.engine", f"{PACKAGE}.lint.engine"
    planted = {**real,
               scan_engine: real[scan_engine] | {f"{PACKAGE}.lint.context"},
               lint_engine: real[lint_engine] | {f"{PACKAGE}.scan.search.find_all"}}
    assert cycles(unit_graph(planted)) == [[f"{PACKAGE}.lint", f"{PACKAGE}.scan"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c"]]
    # through the workflows of operations, not through the project they all read
    migrate = f"{PACKAGE}.operations.migrate"
    through = {**real, lint_engine: real[lint_engine] | {f"{PACKAGE}.project"},
               migrate: real[migrate] | {f"{PACKAGE}.lint.engine"}}
    assert cycles(unit_graph(through)) == []
    through[lint_engine] = through[lint_engine] | {f"{PACKAGE}.operations.deploy"}
    assert cycles(unit_graph(through)) != []


def test_no_import_cycle_between_packages() -> None:
    """lint and scan share findings and gitrepo instead of importing each other, config
    knows no provider, providers import nothing above them: no two units import each
    other, directly or around a circle."""
    assert cycles(unit_graph()) == []


def test_findings_import_nothing_but_the_version() -> None:
    """Every report (lint, scan, doctor, posture) imports findings: findings imports none
    of them."""
    allowed = {PACKAGE, f"{PACKAGE}.__version__"}
    for module, imported in package_imports().items():
        if within(module, f"{PACKAGE}.findings"):
            assert {t for t in imported if within(t, PACKAGE)
                    and not within(t, f"{PACKAGE}.findings")} <= allowed, module


TESTS = REPO_ROOT / "tests"
PROVIDER_PACKAGES = sorted(p.name for p in (SRC / PACKAGE / "providers").iterdir()
                           if (p / "__init__.py").is_file())
# A provider's test modules: named after it (test_vault.py, test_policy_aws.py,
# test_azure_keyvault_fake.py, test_local_store.py, ...).
PROVIDER_TESTS = {f"{provider}:{path.relative_to(TESTS)}": path
                  for provider in PROVIDER_PACKAGES
                  for path in sorted(TESTS.rglob(f"test_*{provider}*.py"))}


def foreign_providers(test_file: Path, provider: str) -> list[str]:
    """Modules of provider packages other than `provider`'s that `test_file` imports (the
    registry, `providers.interface` and `providers.identity_plan` are shared)."""
    names = set(imports_of(test_file, test_file.parent))
    return sorted(n for n in names if any(
        within(n, f"{PACKAGE}.providers.{other}") for other in PROVIDER_PACKAGES
        if other != provider))


def test_every_provider_has_test_modules() -> None:
    assert {name.partition(":")[0] for name in PROVIDER_TESTS} == set(PROVIDER_PACKAGES)
    assert len(PROVIDER_TESTS) >= 10


@pytest.mark.parametrize("name", sorted(PROVIDER_TESTS))
def test_provider_tests_import_only_their_own_provider(name: str) -> None:
    provider = name.partition(":")[0]
    assert foreign_providers(PROVIDER_TESTS[name], provider) == []


def test_the_provider_test_rule_catches_a_foreign_import(tmp_path: Path) -> None:
    planted = tmp_path / "test_planted.py"
    planted.write_text(f"from {PACKAGE}.providers.vault.settings import VaultSettings\n"
                       f"from {PACKAGE}.providers import open_store\n", encoding="utf-8")
    assert foreign_providers(planted, "aws") == [f"{PACKAGE}.providers.vault.settings",
                                                 f"{PACKAGE}.providers.vault.settings.VaultSettings"]
    assert foreign_providers(planted, "vault") == []


PROVIDER_NAME_TEST = re.compile(
    r"""\.provider\s*(==|!=)\s*["']|\bprovider\s*(==|!=)\s*["']|provider\s+(not\s+)?in\s*[(\[{]""")


def provider_name_tests(path: Path) -> list[str]:
    """Lines of `path` that choose by comparing a provider's name."""
    return [f"{path.name}:{n}: {line.strip()}"
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if PROVIDER_NAME_TEST.search(line)]


def test_provider_neutral_code_never_compares_a_provider_name() -> None:
    """Outside `providers/`, code asks the provider (`providers.of(env)`) or matches on
    its settings type; a comparison with a name gives an unknown provider another
    provider's behaviour."""
    neutral = [f for f in sorted((SRC / PACKAGE).rglob("*.py"))
               if not within(module_name(f), f"{PACKAGE}.providers")]
    assert len(neutral) > 50
    assert [hit for f in neutral for hit in provider_name_tests(f)] == []


def test_the_provider_name_rule_catches_a_comparison(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('if env.provider == "vault":\n    pass\nif provider in ("aws",):\n'
                       "    pass\nif env.uses_eso:\n    pass\n", encoding="utf-8")
    assert [hit.split(":")[1] for hit in provider_name_tests(planted)] == ["1", "3"]


def test_only_the_testing_package_imports_pytest() -> None:
    """pytest is a test dependency: `deparrow_secrets.testing` (the conformance suite a
    provider's tests run) is the one place that imports it, and nothing imports that."""
    assert violations("pytest") == []
    assert "pytest" in package_imports()[f"{PACKAGE}.testing.conformance"]
