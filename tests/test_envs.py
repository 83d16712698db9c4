"""The conda environment files: each parses, pins its packages, and covers the imports of every module
that the rules using it run (followed through hacm's own imports). pyproject.toml's dependencies are
ranges; envs/constraints.txt pins the versions CI installs and tests, which the env files pin too."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

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


CONSTRAINTS = REPO / "envs" / "constraints.txt"


def constraints() -> dict[str, str]:
    """package -> the version envs/constraints.txt pins it to (what CI installs and tests)."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, separator, version = requirement.partition("==")
            assert separator and re.fullmatch(r"[\w.]+", version.strip()), f"constraints.txt: {line!r} is not name==version"
            pins[name.strip().lower()] = version.strip()
    return pins


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pyproject_requirements() -> list[Requirement]:
    """Every requirement pyproject.toml states: dependencies and extras (the extras' own `hacm[...]` aside)."""
    project = pyproject()
    listed = project["dependencies"] + [item for extra in project["optional-dependencies"].values() for item in extra]
    return [requirement for requirement in map(Requirement, listed) if requirement.name != project["name"]]


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_every_env_installs_the_versions_ci_tests(path):
    """One torch (and one of everything else) everywhere: a rule's env installs what CI tests."""
    pins = constraints()
    for package, version in env_packages(path).items():
        if package in ("python", "pip"):
            continue
        assert package in pins, f"{path.name}: {package} is not in envs/constraints.txt"
        assert pins[package] == version, f"{path.name}: {package}=={version}, envs/constraints.txt pins {pins[package]}"


def test_dependencies_are_ranges_that_admit_the_tested_versions():
    """pyproject.toml states ranges (a cluster's own PyTorch build is kept), each bounded below and
    below the next major, each admitting the version CI tests, which envs/constraints.txt names."""
    pins = constraints()
    for requirement in pyproject_requirements():
        name = requirement.name.lower()
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">=", "<"}, f"pyproject.toml: {requirement} is not a range >=lower,<upper"
        assert name in pins, f"{name} is a dependency but envs/constraints.txt does not pin it"
        assert requirement.specifier.contains(pins[name]), f"{requirement} excludes the tested {name}=={pins[name]}"


def test_the_torch_range_keeps_a_clusters_torch():
    torch = next(requirement for requirement in pyproject_requirements() if requirement.name == "torch")
    for version in ("2.4.0", "2.5.1+cu121", "2.7.0+cu128", constraints()["torch"]):
        assert torch.specifier.contains(version), f"{torch} would replace a cluster's torch {version}"


def test_requires_python_admits_only_what_the_dependencies_run_on():
    """requires-python's lower bound is one that snakemake and the SLURM plugin (as installed) run on."""
    floor = Version(re.fullmatch(r">=\s*([\d.]+)", pyproject()["requires-python"]).group(1))
    for package in ("snakemake", "snakemake-executor-plugin-slurm"):
        needs = importlib.metadata.metadata(package)["Requires-Python"]
        assert SpecifierSet(needs).contains(floor), f"requires-python >={floor}, but {package} needs {needs}"


def test_ci_installs_with_the_constraints_file():
    install = next(line for line in (REPO / ".ci" / "run").read_text().splitlines() if "pip install" in line)
    assert "-c envs/constraints.txt" in install
    assert f"torch=={constraints()['torch']}" in install, "CI's explicit torch is the constrained one"


def test_the_tested_environment_has_the_pinned_versions():
    """What these tests run on is what envs/constraints.txt pins (torch's local build tag, +cpu here, aside)."""
    for package, version in constraints().items():
        installed = importlib.metadata.version(package).split("+")[0]
        assert installed == version, f"{package} {installed} is installed, envs/constraints.txt pins {version}"
