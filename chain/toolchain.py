"""Where the native Foundry binaries (anvil, forge) are found: the one place that knows.

``package.json`` lists one optional npm package per platform for each tool,
``@foundry-rs/<tool>-<platform>`` (``linux-amd64``, ``linux-arm64``,
``darwin-amd64``, ``darwin-arm64``, ``win32-amd64``), each declaring its
``os``/``cpu`` so that ``npm ci`` installs only the one matching the machine.
The binary is, in this order:

1. ``POINTSNET_ANVIL_BIN`` / ``POINTSNET_FORGE_BIN`` if set;
2. ``node_modules/@foundry-rs/<tool>-<platform>/bin/<tool>`` (``.exe`` on
   Windows) for this machine's platform;
3. a ``<tool>`` on ``PATH`` that is not inside a ``node_modules`` folder.

The npm launchers (``node_modules/.bin/anvil``, the ``@foundry-rs/anvil``
package) are never used: they exit 0 even when the binary fails to run, so a
devnet that never started would look like one that stopped cleanly.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from chain.config import PROJECT_ROOT
from chain.errors import DevnetError

#: ``node_modules`` of this checkout.
NODE_MODULES = PROJECT_ROOT / "node_modules"

#: npm's os names by :func:`platform.system` (lower-cased).
_NPM_OS = {"linux": "linux", "darwin": "darwin", "windows": "win32"}

#: Foundry's cpu names by :func:`platform.machine` (lower-cased).
_FOUNDRY_CPU = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

#: The environment variable naming each tool's binary, which wins over the rest.
OVERRIDES = {"anvil": "POINTSNET_ANVIL_BIN", "forge": "POINTSNET_FORGE_BIN"}

#: The platforms @foundry-rs publishes native packages for (all in ``package.json``).
PLATFORMS = ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64", "win32-amd64")


def npm_platform() -> str | None:
    """This machine's @foundry-rs platform suffix (``"darwin-arm64"``), or None if there is none."""
    npm_os = _NPM_OS.get(platform.system().lower())
    cpu = _FOUNDRY_CPU.get(platform.machine().lower())
    if npm_os is None or cpu is None or f"{npm_os}-{cpu}" not in PLATFORMS:
        return None
    return f"{npm_os}-{cpu}"


def native_package(tool: str) -> str | None:
    """The npm package holding ``tool`` for this platform (``"@foundry-rs/anvil-linux-amd64"``)."""
    suffix = npm_platform()
    return f"@foundry-rs/{tool}-{suffix}" if suffix else None


def native_binary(tool: str) -> Path:
    """The native ``tool`` executable (see the module docstring for the order).

    Raises :class:`~chain.errors.DevnetError` naming the npm package to install
    (or, on a platform without one, what to do instead) when there is none.
    """
    variable = OVERRIDES[tool]
    override = os.environ.get(variable)
    if override:
        return Path(override)
    package = native_package(tool)
    if package is not None:
        exe = f"{tool}.exe" if package.endswith("win32-amd64") else tool
        native = NODE_MODULES / package / "bin" / exe
        if native.is_file():
            return native
    outside_node_modules = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and "node_modules" not in Path(folder).parts
    ]
    on_path = shutil.which(tool, path=os.pathsep.join(outside_node_modules))
    if on_path:
        return Path(on_path)
    where = f"{platform.system()}/{platform.machine()}"
    if package is None:
        raise DevnetError(
            f"{tool} not found: @foundry-rs publishes no {tool} package for {where} "
            f"(only {', '.join(PLATFORMS)}); install Foundry's {tool} on PATH "
            f"or set {variable}"
        )
    raise DevnetError(
        f"{tool} not found: its native binary for {where} comes in the npm package "
        f"{package} (missing from {NODE_MODULES}); run `npm ci` in {PROJECT_ROOT} "
        f"to install it, or set {variable}"
    )


def anvil_binary() -> Path:
    """The native anvil executable."""
    return native_binary("anvil")
