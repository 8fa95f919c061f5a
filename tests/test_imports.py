"""The import contract of the package, read from the source with `ast` (nothing is imported).

Every import counts wherever it is written (module level, inside a function, under
TYPE_CHECKING), and so do the lazy forms the package uses for optional dependencies:
`require("hvac", "vault")` and `importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from helpers import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGE = "deparrow_secrets"
LAZY_IMPORTERS = {"require", "import_module"}

# What the stores may not know about: everything that uses them.
ABOVE_STORES = ("cli", "render", "lint", "operations", "cluster", "posture", "policy", "scan",
                "ledger")
# A provider's SDK (and the HTTP library it is driven through) belongs to that provider's
# modules: stores/<provider>.py and policy/<provider>.py.
PROVIDER_SDKS = {"hvac": "vault", "requests": "vault", "boto3": "aws", "botocore": "aws",
                 "azure": "azure"}
SDK_HOMES = ("stores", "policy")


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


def violations(rule: str, imports: dict[str, set[str]] | None = None) -> list[str]:
    """`importer -> imported` pairs breaking `rule` (see the tests below)."""
    found = []
    for importer, imported in (package_imports() if imports is None else imports).items():
        for target in sorted(imported):
            top = target.split(".")[0]
            if rule == "stores" and within(importer, f"{PACKAGE}.stores"):
                bad = any(within(target, f"{PACKAGE}.{up}") for up in ABOVE_STORES)
            elif rule == "click":
                bad = top == "click" and not within(importer, f"{PACKAGE}.cli")
            elif rule == "kubernetes":
                bad = top == "kubernetes" and not within(importer, f"{PACKAGE}.cluster")
            elif rule == "pytest":
                bad = (top == "pytest" or within(target, f"{PACKAGE}.testing")) \
                    and not within(importer, f"{PACKAGE}.testing")
            elif rule == "sdk" and top in PROVIDER_SDKS:
                homes = {f"{PACKAGE}.{home}.{PROVIDER_SDKS[top]}" for home in SDK_HOMES}
                bad = importer not in homes
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
    vault = f"{PACKAGE}.stores.vault"  # a copy: the cached reading stays as it is
    planted = {**real, vault: real[vault] | {f"{PACKAGE}.cli.common", "click",
                                             "kubernetes.client", "botocore.config"}}
    assert violations("stores", planted) == [f"{PACKAGE}.stores.vault -> {PACKAGE}.cli.common"]
    assert violations("click", planted) == [f"{PACKAGE}.stores.vault -> click"]
    assert violations("kubernetes", planted) == [f"{PACKAGE}.stores.vault -> kubernetes.client"]
    assert violations("sdk", planted) == [f"{PACKAGE}.stores.vault -> botocore.config"]
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
    """hvac in stores/vault.py and policy/vault.py, botocore in the aws ones, azure in
    stores/azure.py; nothing else in the package touches a provider SDK."""
    assert violations("sdk") == []
    seen = {target.split(".")[0] for imported in package_imports().values()
            for target in imported}
    assert set(PROVIDER_SDKS) <= seen  # the rule is about imports that exist


def test_only_the_testing_package_imports_pytest() -> None:
    """pytest is a test dependency: `deparrow_secrets.testing` (the conformance suite a
    provider's tests run) is the one place that imports it, and nothing imports that."""
    assert violations("pytest") == []
    assert "pytest" in package_imports()[f"{PACKAGE}.testing.conformance"]
