"""Every third-party package the code imports is declared in pyproject.toml and pinned in the locks.

A package that only arrives as some other package's dependency can vanish or change under us
when that package moves on; the Docker image installs only ``requirements.lock``, so what
``shared/``, ``services/`` and ``backtest/`` import must be a runtime dependency.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_CODE = ("shared", "services", "backtest", "research")  # what the Docker image copies
DEV_CODE = ("tests", "scripts", "bench")
# Runs in a venv of its own with vectorbt's pins (see the script's docstring).
SEPARATE_ENVIRONMENTS = (ROOT / "bench" / "vendor_envs",)
# scripts/ run with their own folder on sys.path, so its modules import each other by bare name;
# bench/ is a namespace package (its scripts share helpers as bench.<module>).
PACKAGES = {path.parent.name for path in ROOT.glob("*/__init__.py")}
FIRST_PARTY = PACKAGES | {"tests", "bench"} | {path.stem for path in (ROOT / "scripts").glob("*.py")}


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(source: str) -> set[str]:
    """Top-level names of the absolute imports in ``source``, function-level ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name not in sys.stdlib_module_names and name not in FIRST_PARTY and name != "__future__"
    }


def imports_under(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Third-party top-level module -> the files (relative) that import it."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if any(path.is_relative_to(separate) for separate in SEPARATE_ENVIRONMENTS):
                continue
            for name in third_party(imported_modules(path.read_text())):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def distributions_of() -> dict[str, list[str]]:
    """Import name -> the installed distributions that provide it."""
    return {name: [canonical(d) for d in dists] for name, dists in importlib.metadata.packages_distributions().items()}


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match is not None, f"unreadable requirement {requirement!r} in pyproject.toml"
    return canonical(match[0])


def declared() -> tuple[set[str], set[str]]:
    """(runtime, dev) distribution names of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {requirement_name(r) for r in project["dependencies"]}
    dev = {requirement_name(r) for r in project["optional-dependencies"]["dev"]}
    return runtime, dev


def pinned(lock: str) -> set[str]:
    lines = (ROOT / lock).read_text().splitlines()
    return {canonical(m[1]) for line in lines if (m := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line))}


def undeclared(imports: dict[str, set[str]], allowed: set[str]) -> list[str]:
    problems = []
    for module, files in sorted(imports.items()):
        dists = distributions_of().get(module)
        if not dists:
            problems.append(f"{module} (imported by {', '.join(sorted(files))}) is not installed")
        elif not set(dists) & allowed:
            problems.append(f"{module} (distribution {' or '.join(dists)}; imported by {', '.join(sorted(files))})")
    return problems


def test_the_scan_reads_absolute_imports_anywhere_in_a_module() -> None:
    source = "import numpy as np\nfrom a.b import c\nfrom . import sibling\n\ndef f():\n    import yaml.cyaml\n"
    assert imported_modules(source) == {"numpy", "a", "yaml"}
    assert third_party({"numpy", "os", "shared", "__future__", "processes"}) == {"numpy"}
    assert {"pandas", "numba", "redis"} <= set(imports_under(RUNTIME_CODE))


def test_every_package_of_the_repository_is_scanned() -> None:
    assert set(RUNTIME_CODE) | set(DEV_CODE) >= PACKAGES


def test_runtime_code_imports_only_runtime_dependencies() -> None:
    runtime, _ = declared()
    problems = undeclared(imports_under(RUNTIME_CODE), runtime)
    assert not problems, "imported but not in [project] dependencies: " + "; ".join(problems)


def test_tests_scripts_and_benchmarks_import_only_declared_packages() -> None:
    runtime, dev = declared()
    problems = undeclared(imports_under(DEV_CODE), runtime | dev)
    assert not problems, "imported but not in pyproject.toml's dependencies or dev extra: " + "; ".join(problems)


def test_every_declared_package_is_pinned_in_the_locks() -> None:
    runtime, dev = declared()
    missing = runtime - pinned("requirements.lock")
    assert not missing, f"missing from requirements.lock: {sorted(missing)}"
    missing = (runtime | dev) - pinned("requirements-dev.lock")
    assert not missing, f"missing from requirements-dev.lock: {sorted(missing)}"


def versions(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    return {canonical(m[1]): m[2] for line in lines if (m := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line))}


def test_the_two_locks_pin_the_same_version_of_every_package_they_share() -> None:
    # The image runs requirements.lock and the tests run requirements-dev.lock: a package pinned
    # differently in them is tested at one version and shipped at another.
    runtime, dev = versions("requirements.lock"), versions("requirements-dev.lock")
    differing = {name: (runtime[name], dev[name]) for name in runtime.keys() & dev.keys() if runtime[name] != dev[name]}
    assert not differing, f"runtime vs dev lock: {differing}"
    assert not runtime.keys() - dev.keys(), f"in requirements.lock only: {sorted(runtime.keys() - dev.keys())}"
