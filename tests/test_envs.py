"""The conda environment files: each parses, pins its packages, and covers the imports of every module
that the rules using it run (followed through hacm's own imports)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
ENVS = sorted((REPO / "envs").glob("*.yaml"))
# import name -> conda (or pip) package name, where they differ
PACKAGE_OF = {"yaml": "pyyaml"}


def rule_blocks(text: str) -> dict[str, str]:
    """rule name -> its text (up to the next rule)."""
    parts = re.split(r"^rule (\w+):\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def rules_env_and_modules() -> list[tuple[str, Path, set[str]]]:
    found = []
    for path in RULES:
        for name, block in rule_blocks(path.read_text()).items():
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            modules = set(re.findall(r" -m (hacm(?:\.\w+)*)", block))  # python -m, or {params.launch} -m
            if modules:
                assert env, f"rule {name} runs {modules} but names no conda env"
                found.append((name, (path.parent / env.group(1)).resolve(), modules))
    return found


def module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(module: str) -> set[str]:
    """Top-level names of the non-hacm, non-stdlib modules `module` imports, directly or through hacm
    (`python -m` of a package runs its __main__.py too)."""
    seen, todo, found = set(), [module, f"{module}.__main__"], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # packages' __init__ run too
        path = module_file(current)
        if path is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("hacm"):
                    todo.append(name)
                elif name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("__future__"):
                    found.add(name.split(".")[0])
    return found


def env_packages(path: Path) -> dict[str, str]:
    """package -> pinned spec, conda and pip dependencies together."""
    document = yaml.safe_load(path.read_text())
    packages = {}
    for dependency in document["dependencies"]:
        if isinstance(dependency, dict):
            for requirement in dependency.get("pip", []):
                name, _, version = requirement.partition("==")
                packages[name.lower()] = version
        else:
            name, _, version = dependency.partition("=")
            packages[name.lower()] = version
    return packages


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_file_parses_and_pins_every_package(path):
    document = yaml.safe_load(path.read_text())
    assert {"name", "channels", "dependencies"} <= set(document)
    for package, version in env_packages(path).items():
        assert re.match(r"\d", version), f"{path.name}: {package} is not pinned to a version"


def test_every_rule_that_runs_hacm_names_an_existing_env():
    uses = rules_env_and_modules()
    assert {name for name, _, _ in uses} >= {"synthetic_dataset", "fetch", "prepare", "pretrain", "evaluate", "tables"}
    for name, env, _ in uses:
        assert env.exists() and env.parent == REPO / "envs", f"rule {name}: {env}"


@pytest.mark.parametrize("rule,env,modules", rules_env_and_modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_env_covers_the_imports_of_the_modules_its_rule_runs(rule, env, modules):
    packages = env_packages(env)
    for module in modules:
        assert module_file(module) is not None, f"rule {rule} runs {module}, which does not exist"
        missing = {PACKAGE_OF.get(name, name) for name in third_party_imports(module)} - set(packages)
        assert not missing, f"rule {rule} runs {module} in {env.name}, which lacks {sorted(missing)}"


def test_the_import_scan_sees_through_hacm():
    assert {"torch", "geoopt"} <= third_party_imports("hacm.pretrain")
    assert "torch" not in third_party_imports("hacm.tables")
    assert "matplotlib" in third_party_imports("hacm.tables")  # through hacm/tables/__main__.py
    assert {"py7zr", "inflate64"} <= third_party_imports("hacm.fetch")


def pyproject_pins() -> dict[str, str | None]:
    """package -> the version pyproject.toml pins it to (None for a range)."""
    document = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {}
    for requirement in document["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        pins[re.split(r"[<>=!~ ]", name)[0].lower()] = version.strip() or None
    return pins


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_every_env_installs_the_versions_pyproject_pins(path):
    """One torch (and one of everything else) everywhere: a rule's env installs what CI tests."""
    pins = pyproject_pins()
    for package, version in env_packages(path).items():
        if package in ("python", "pip"):
            continue
        assert package in pins, f"{path.name}: {package} is not a dependency in pyproject.toml"
        assert pins[package] == version, f"{path.name}: {package}=={version}, pyproject.toml pins {pins[package]}"


def test_the_tested_environment_has_the_pinned_versions():
    """What these tests run on is what pyproject pins (torch's local build tag, +cpu here, aside)."""
    for package, version in pyproject_pins().items():
        if version is not None:
            installed = importlib.metadata.version(package).split("+")[0]
            assert installed == version, f"{package} {installed} is installed, pyproject.toml pins {version}"
