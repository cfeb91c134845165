"""pyproject.toml, constraints.txt and environment.yml must describe the same installation.

Conda is not available where the tests run, so this is environment.yml's only check."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return canonical(re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0])


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {requirement_name(s) for s in specs}


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[canonical(name)] = version.strip()
    return found


def constraints() -> dict[str, str]:
    return pins((ROOT / "constraints.txt").read_text().splitlines())


def environment_pip() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    section = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    assert "-e ." in section, "environment.yml must install the helpers package itself (- -e .)"
    return pins(section)


def test_every_dependency_is_pinned_in_constraints():
    missing = pyproject_requirements() - constraints().keys()
    assert not missing, f"constraints.txt lacks pins for {sorted(missing)}"


def test_environment_installs_the_same_packages_at_the_same_versions():
    env, pinned = environment_pip(), constraints()
    assert set(env) == pyproject_requirements(), "environment.yml's pip section and pyproject.toml differ"
    different = {name: (version, pinned[name]) for name, version in env.items() if pinned[name] != version}
    assert not different, f"environment.yml and constraints.txt disagree: {different}"


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert constraints()["torch"] == "2.13.0"
    assert environment_pip()["torch"] == "2.13.0"
    assert "conda-forge" in (ROOT / "environment.yml").read_text()


def _torch_index():
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_index", ROOT / "scripts" / "torch_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_setup_picks_the_torch_build_for_each_kind_of_machine():
    ti = _torch_index()
    cpu = ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    assert ti.flags("Linux", gpu=False, index_reachable=True) == cpu  # the CPU build, a few hundred MB
    assert ti.flags("Linux", gpu=False, index_reachable=False) == []  # offline: pip's own index, at once
    assert ti.flags("Linux", gpu=True, index_reachable=True) == []  # PyPI's CUDA build
    for system in ("Darwin", "Windows"):
        assert ti.flags(system, gpu=False, index_reachable=True) == []  # PyPI's wheels
    install = [line for line in (ROOT / "Makefile").read_text().splitlines() if "pip install" in line and "-e" in line]
    assert len(install) == 1 and "scripts/torch_index.py" in install[0] and "-c constraints.txt" in install[0]


def test_an_index_that_does_not_answer_is_given_up_quickly():
    import time

    ti = _torch_index()
    start = time.perf_counter()
    assert ti.reachable("http://127.0.0.1:9/whl/cpu/torch/", timeout=1.0) is False  # nothing listens on port 9
    assert ti.reachable("not a url") is False
    assert time.perf_counter() - start < 5


def test_binder_installs_what_studying_needs_at_the_pinned_versions():
    """binder/: repo2docker builds the environment from environment.yml alone, then postBuild installs the course."""
    lines = (ROOT / "binder" / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    section = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    runtime = {requirement_name(s) for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
               ["dependencies"]}
    binder, pinned = pins(section), constraints()
    assert set(binder) == runtime, "binder/environment.yml must pin exactly pyproject.toml's runtime dependencies"
    assert {n: v for n, v in binder.items() if pinned[n] != v} == {}, "binder/environment.yml and constraints.txt"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in section  # Binder has no GPU
    assert "-e ." not in section  # the repository is not there yet when this file is used
    post = ROOT / "binder" / "postBuild"
    assert "pip install --no-deps -e ." in post.read_text() and post.stat().st_mode & 0o111, "postBuild installs it"
