"""Binder's environment.yml must install what pyproject.toml declares.

repo2docker (Binder) never reads pyproject.toml: it installs environment.yml and then
runs postBuild. These tests catch a dependency added to one file and forgotten in the
other, and a postBuild that lost its executable bit.
"""
from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXTRAS_FOR_BINDER = ("book", "test", "course", "edge")   # extras that environment.yml installs too
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def normalise(requirement: str) -> str:
    """Package name of a requirement line: 'Sphinx_Exercise[x]>=1.2 ; python_version>"3"' -> 'sphinx-exercise'."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def pip_lines(env: dict) -> list[str]:
    """The lines of the pip section of environment.yml, options included."""
    sections = [d["pip"] for d in env.get("dependencies", []) if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, f"environment.yml needs exactly one pip section, found {len(sections)}"
    return [str(line).strip() for line in sections[0]]


def pyproject_names() -> set[str]:
    project = pyproject()["project"]
    requirements = list(project.get("dependencies", []))
    extras = project.get("optional-dependencies", {})
    for extra in EXTRAS_FOR_BINDER:
        assert extra in extras, f"pyproject.toml has no extra {extra!r}; extras: {sorted(extras)}"
        requirements += extras[extra]
    own = normalise(project["name"])
    return {normalise(r) for r in requirements} - {own}   # "pkg[book]" self-references


def environment_names() -> set[str]:
    return {normalise(line) for line in pip_lines(environment()) if not line.startswith("-")}


def test_environment_yml_installs_the_pyproject_dependencies():
    declared, binder = pyproject_names(), environment_names()
    missing_in_env = sorted(declared - binder)
    missing_in_pyproject = sorted(binder - declared)
    assert not missing_in_env and not missing_in_pyproject, (
        "environment.yml (pip section) and pyproject.toml (dependencies + extras "
        f"{list(EXTRAS_FOR_BINDER)}) list different packages:\n"
        f"  in pyproject.toml, missing from environment.yml: {missing_in_env}\n"
        f"  in environment.yml, missing from pyproject.toml: {missing_in_pyproject}")


def test_environment_yml_uses_cpu_torch_and_the_pinned_builds():
    lines = pip_lines(environment())
    assert any(line.startswith("--extra-index-url") and CPU_INDEX in line for line in lines), (
        f"environment.yml's pip section should have '--extra-index-url {CPU_INDEX}' so that Binder "
        f"installs CPU wheels of torch, not several GB of CUDA libraries; pip lines: {lines}")
    # Exact pins in constraints.txt (torch, torchvision) must be the ones Binder installs.
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            pins[normalise(line)] = line.replace(" ", "")
    env_specs = {normalise(l): l.replace(" ", "") for l in lines if not l.startswith("-")}
    wrong = {name: (pin, env_specs.get(name)) for name, pin in pins.items() if env_specs.get(name) != pin}
    assert not wrong, ("environment.yml should pin exactly what constraints.txt pins; "
                       "name: (constraints.txt, environment.yml) = " + repr(wrong))


def test_environment_yml_python_version():
    deps = [d for d in environment()["dependencies"] if isinstance(d, str)]
    assert any(re.fullmatch(r"python\s*=+\s*3\.11(\.\*)?", d) for d in deps), (
        f"environment.yml should ask for python=3.11; conda dependencies: {deps}")
    assert "pip" in deps, f"environment.yml should list pip among the conda dependencies: {deps}"


def test_postbuild_is_executable_and_installs_the_package():
    path = ROOT / "postBuild"
    assert path.is_file(), f"{path} is missing: Binder would not install hintlearn_mini"
    mode = path.stat().st_mode
    assert mode & stat.S_IXUSR and os.access(path, os.X_OK), (
        f"{path} is not executable (mode {stat.filemode(mode)}); run `chmod +x postBuild` and "
        "commit the bit (`git update-index --chmod=+x postBuild`)")
    text = path.read_text()
    assert text.startswith("#!/bin/bash"), f"postBuild should start with '#!/bin/bash', got {text.splitlines()[:1]}"
    commands = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert any(re.fullmatch(r"(python -m )?pip install (--no-deps -e|-e --no-deps) \.", c) for c in commands), (
        f"postBuild should run `pip install --no-deps -e .`; its commands: {commands}")


def test_normalise():
    assert normalise("Sphinx_Exercise[all]>=1.2.1; python_version > '3.9'") == "sphinx-exercise"
    assert normalise("jupyter-book>=1.0.4,<2") == "jupyter-book"
    assert normalise("hintlearn_mini @ git+https://example.org/x") == "hintlearn-mini"
    assert normalise("zope.interface==6") == "zope-interface"


def make_dry_run(*variables: str):
    """What `make venv` would run (`-n -B`: print every command, run none)."""
    import subprocess
    return subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "venv", *variables],
                          capture_output=True, text=True, timeout=60)


def test_make_torch_cpu_installs_pytorchs_cpu_wheels_and_the_default_does_not():
    install = lambda out: [line for line in out.splitlines() if "pip install" in line and "-e" in line]
    cpu = install(make_dry_run("TORCH=cpu").stdout)
    default = install(make_dry_run().stdout)
    assert len(cpu) == len(default) == 1, (cpu, default)
    assert f"--extra-index-url {CPU_INDEX}" in cpu[0]
    assert CPU_INDEX not in default[0]
    assert cpu[0].replace(f"--extra-index-url {CPU_INDEX}", "").split() == default[0].split()
    wrong = make_dry_run("TORCH=gpu")
    assert wrong.returncode != 0 and "TORCH=gpu is not a choice" in wrong.stderr
