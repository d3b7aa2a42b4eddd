"""The native Foundry binary is resolved per platform, never through an npm launcher."""

from __future__ import annotations

import json
import os
import platform
import stat
from pathlib import Path

import pytest

from chain import toolchain
from chain.config import PROJECT_ROOT
from chain.errors import DevnetError

# (platform.system(), platform.machine()) as Python reports them -> npm package suffix
PLATFORMS = [
    ("Linux", "x86_64", "linux-amd64"),
    ("Linux", "aarch64", "linux-arm64"),
    ("Linux", "arm64", "linux-arm64"),
    ("Darwin", "x86_64", "darwin-amd64"),
    ("Darwin", "arm64", "darwin-arm64"),
    ("Windows", "AMD64", "win32-amd64"),
]


def _on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, system: str, machine: str) -> Path:
    """Pretend to be on ``system``/``machine`` with an empty ``node_modules`` and no PATH."""
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    node_modules = tmp_path / "node_modules"
    node_modules.mkdir()
    monkeypatch.setattr(toolchain, "NODE_MODULES", node_modules)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    for tool in ("ANVIL", "FORGE"):
        monkeypatch.delenv(f"POINTSNET_{tool}_BIN", raising=False)
    return node_modules


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(("system", "machine", "suffix"), PLATFORMS)
@pytest.mark.parametrize("tool", ["anvil", "forge"])
def test_each_platform_resolves_its_own_package(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    system: str,
    machine: str,
    suffix: str,
    tool: str,
) -> None:
    node_modules = _on(monkeypatch, tmp_path, system, machine)
    exe = f"{tool}.exe" if system == "Windows" else tool
    # every platform's package is there: only this machine's may be picked
    for other in toolchain.PLATFORMS:
        other_exe = f"{tool}.exe" if other.startswith("win32") else tool
        _executable(node_modules / f"@foundry-rs/{tool}-{other}/bin/{other_exe}")
    assert toolchain.npm_platform() == suffix
    assert toolchain.native_package(tool) == f"@foundry-rs/{tool}-{suffix}"
    assert toolchain.native_binary(tool) == node_modules / f"@foundry-rs/{tool}-{suffix}/bin/{exe}"


@pytest.mark.parametrize(("system", "machine", "suffix"), PLATFORMS)
def test_a_missing_package_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, system: str, machine: str, suffix: str
) -> None:
    node_modules = _on(monkeypatch, tmp_path, system, machine)
    other = "linux-amd64" if suffix == "darwin-arm64" else "darwin-arm64"
    _executable(node_modules / f"@foundry-rs/anvil-{other}/bin/anvil")  # not this platform's
    with pytest.raises(DevnetError, match=f"npm package @foundry-rs/anvil-{suffix} .*npm ci"):
        toolchain.anvil_binary()


@pytest.mark.parametrize(("system", "machine"), [("FreeBSD", "amd64"), ("Linux", "riscv64")])
def test_a_platform_without_a_package_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, system: str, machine: str
) -> None:
    _on(monkeypatch, tmp_path, system, machine)
    assert toolchain.npm_platform() is None
    with pytest.raises(DevnetError, match=f"no anvil package for {system}/{machine}.*PATH"):
        toolchain.anvil_binary()


def test_the_npm_launcher_on_path_is_never_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _on(monkeypatch, tmp_path, "Linux", "x86_64")
    launchers = tmp_path / "project" / "node_modules" / ".bin"
    _executable(launchers / "anvil")  # exits 0 whatever happens: refused
    monkeypatch.setenv("PATH", str(launchers))
    with pytest.raises(DevnetError, match="@foundry-rs/anvil-linux-amd64"):
        toolchain.anvil_binary()
    elsewhere = _executable(tmp_path / "foundry" / "bin" / "anvil")  # a Foundry install
    monkeypatch.setenv("PATH", f"{launchers}:{elsewhere.parent}")
    assert toolchain.anvil_binary() == elsewhere


def test_the_environment_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    node_modules = _on(monkeypatch, tmp_path, "Darwin", "arm64")
    _executable(node_modules / "@foundry-rs/forge-darwin-arm64/bin/forge")
    monkeypatch.setenv("POINTSNET_FORGE_BIN", "/opt/foundry/forge")
    assert toolchain.native_binary("forge") == Path("/opt/foundry/forge")


def test_this_machine_resolves_the_installed_anvil() -> None:
    """The checkout's own ``npm ci`` installed this platform's package, and it runs."""
    if "POINTSNET_ANVIL_BIN" in os.environ:
        pytest.skip("POINTSNET_ANVIL_BIN overrides the npm package")
    package = toolchain.native_package("anvil")
    assert package is not None
    binary = toolchain.anvil_binary()
    assert binary.is_relative_to(toolchain.NODE_MODULES / package)


def test_package_json_lists_every_platform_as_optional_and_the_lock_gates_each() -> None:
    """npm installs only the matching package: each is optional and declares its os/cpu."""
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text())
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    assert "os" not in manifest and "cpu" not in manifest  # the project itself runs anywhere
    assert not any(name.startswith("@foundry-rs/") for name in manifest["dependencies"])
    npm_cpu = {"amd64": "x64", "arm64": "arm64"}
    for tool in toolchain.OVERRIDES:
        for suffix in toolchain.PLATFORMS:
            package = f"@foundry-rs/{tool}-{suffix}"
            assert manifest["optionalDependencies"][package] == "1.7.1"
            locked = lock[f"node_modules/{package}"]
            npm_os, cpu = suffix.split("-")
            assert (locked["optional"], locked["os"], locked["cpu"]) == (
                True,
                [npm_os],
                [npm_cpu[cpu]],
            ), package
