"""Compile the project's Solidity sources with the pinned compiler.

Every ``contracts/**/*.sol`` file (mocks included, ``contracts/artifacts/``
excluded) is compiled in one standard-JSON run through py-solc-x's
:func:`solcx.compile_standard`.  The compiler is a native ``solc`` on ``PATH``
when it reports the version pinned in ``node_modules/solc/package.json``, and
otherwise the ``chain/bin/solc`` adapter around that pinned npm compiler.

Source unit names are paths relative to the project root
(``contracts/PointsToken.sol``); imports such as ``@openzeppelin/...`` are
resolved here, in Python, against the root and then the project's
``node_modules`` and handed to the compiler as literal ``content``.  The
compiler therefore never reads the filesystem itself, the native compiler and
the adapter see byte-identical input, and the bytecode (whose CBOR metadata
hash covers source unit names and contents) does not depend on where the
checkout lives.

All compiler settings live in :data:`COMPILER_SETTINGS`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import posixpath
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from chain.config import PROJECT_ROOT
from chain.errors import CompileError
from chain.toolchain import NODE_MODULES  # this checkout's, never the compiled root's

logger = logging.getLogger(__name__)

#: The native-looking wrapper around the pinned npm ``solc``.
ADAPTER = PROJECT_ROOT / "chain" / "bin" / "solc"
#: Where the Solidity sources live, relative to a project root.
CONTRACTS_DIR = "contracts"
#: Generated artifacts, relative to the contracts directory (never compiled).
ARTIFACTS_SUBDIR = "artifacts"

#: The one place compiler settings are fixed (output selection excluded).
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": True,
    "metadata": {"appendCBOR": True, "bytecodeHash": "ipfs"},
}

#: Per-contract outputs requested from the compiler.
OUTPUT_SELECTION: list[str] = [
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.immutableReferences",
    "evm.methodIdentifiers",
    "userdoc",
    "devdoc",
    "metadata",
]

_VERSION_RE = re.compile(r"Version:\s*(\d+\.\d+\.\d+)(\S*)")

# Comments, string literals, the ``import`` keyword and statement ends: enough
# of a Solidity tokenizer to find import paths without being fooled by either
# commented-out imports or comment markers inside strings.
_TOKEN_RE = re.compile(
    r"//[^\n]*"
    r"|/\*.*?\*/"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'(?:\\.|[^'\\\n])*'"
    r"|\bimport\b"
    r"|;",
    re.DOTALL,
)


# ---------------------------------------------------------------------------
# compiler selection


def pinned_version() -> str:
    """The solc version pinned by ``node_modules/solc/package.json`` (``"0.8.30"``)."""
    package = NODE_MODULES / "solc" / "package.json"
    try:
        return str(json.loads(package.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise CompileError(f"cannot read the pinned solc version from {package}: {exc}") from exc


def _reported_version(binary: Path) -> str | None:
    """``"0.8.30+commit.73712a01"`` as ``binary --version`` reports it, or None."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out)
    if match is None:
        return None
    build = match.group(2)
    commit = re.match(r"\+commit\.[0-9a-f]+", build)
    return match.group(1) + (commit.group(0) if commit else "")


@lru_cache(maxsize=1)
def _select_compiler() -> tuple[Path, str]:
    pinned = pinned_version()
    native = shutil.which("solc")
    if native is not None:
        version = _reported_version(Path(native))
        if version is not None and version.split("+", 1)[0] == pinned:
            return Path(native), version
        logger.debug("ignoring solc on PATH (%s): reports %s, pinned %s", native, version, pinned)
    if not ADAPTER.is_file():
        raise CompileError(f"no solc {pinned} on PATH and the adapter {ADAPTER} is missing")
    version = _reported_version(ADAPTER)
    if version is None or version.split("+", 1)[0] != pinned:
        raise CompileError(
            f"{ADAPTER} reports version {version!r}, expected {pinned}; run `npm ci`"
        )
    return ADAPTER, version


def compiler_path() -> Path:
    """The compiler executable used: a matching native ``solc`` or the adapter."""
    return _select_compiler()[0]


def compiler_version() -> str:
    """The full compiler version, e.g. ``"0.8.30+commit.73712a01"``."""
    return _select_compiler()[1]


def compiler_settings() -> dict[str, Any]:
    """A fresh copy of :data:`COMPILER_SETTINGS`."""
    return copy.deepcopy(COMPILER_SETTINGS)


# ---------------------------------------------------------------------------
# sources


def project_sources(root: Path = PROJECT_ROOT) -> list[str]:
    """Source unit names of the project's own ``.sol`` files, sorted."""
    contracts = root / CONTRACTS_DIR
    artifacts = contracts / ARTIFACTS_SUBDIR
    if not contracts.is_dir():
        return []
    return sorted(
        path.relative_to(root).as_posix()
        for path in contracts.rglob("*.sol")
        if path.is_file() and artifacts not in path.parents
    )


def import_paths(source: str) -> list[str]:
    """The import paths named by the ``import`` statements of ``source``."""
    found: list[str] = []
    in_import = False
    taken = False
    for match in _TOKEN_RE.finditer(source):
        token = match.group(0)
        if token.startswith(("//", "/*")):
            continue
        if token == "import":
            in_import, taken = True, False
        elif token == ";":
            in_import = False
        elif in_import and not taken:
            found.append(token[1:-1])
            taken = True
    return found


def resolve_import(importer: str, import_path: str) -> str:
    """The source unit name an import of ``import_path`` in ``importer`` refers to.

    Follows solc's rules: ``./`` and ``../`` imports are relative to the
    importing source unit, anything else is taken as the source unit name itself.
    """
    if not import_path.startswith(("./", "../")):
        return import_path
    prefix = importer.rsplit("/", 1)[0] if "/" in importer else ""
    parts = [p for p in import_path.split("/") if p not in ("", ".")]
    while parts and parts[0] == "..":
        parts.pop(0)
        prefix = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    joined = posixpath.normpath("/".join(parts)) if parts else ""
    return f"{prefix}/{joined}" if prefix else joined


def _locate(name: str, root: Path) -> Path | None:
    if name.startswith("/") or ".." in name.split("/"):
        return None
    for base in dict.fromkeys((root, root / "node_modules", NODE_MODULES)):
        candidate = base / name
        if candidate.is_file():
            return candidate
    return None


def collect_sources(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Project sources plus everything they import, as ``{source unit name: content}``.

    Imports that cannot be found are left out; the compiler then reports them.
    """
    root = root.resolve()
    contents: dict[str, str] = {}
    pending = project_sources(root)
    while pending:
        name = pending.pop()
        if name in contents:
            continue
        path = _locate(name, root)
        if path is None:
            continue
        # bytes -> str without newline translation: the compiler hashes the content
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError(f"{path} is not valid UTF-8: {exc}") from exc
        contents[name] = text
        for imported in import_paths(text):
            target = resolve_import(name, imported)
            if target not in contents:
                pending.append(target)
    return dict(sorted(contents.items()))


def standard_input(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The standard-JSON compiler input for the project at ``root``."""
    sources = collect_sources(root)
    own = project_sources(root)
    settings = compiler_settings()
    settings["outputSelection"] = {name: {"*": list(OUTPUT_SELECTION)} for name in own}
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": settings,
    }


def source_hash(content: str) -> str:
    """Hex sha256 of a source file's content."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# compilation


def run_compiler(input_data: dict[str, Any], root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Run the compiler on standard-JSON ``input_data``; raise :class:`CompileError` on errors."""
    import solcx  # here: reading committed artifacts (every gateway process) needs no compiler
    from solcx.exceptions import SolcError

    root = root.resolve()
    allow = [str(root)] + ([str(NODE_MODULES)] if NODE_MODULES.is_dir() else [])
    try:
        output: dict[str, Any] = solcx.compile_standard(
            input_data,
            base_path=str(root),
            allow_paths=allow,
            solc_binary=compiler_path(),
            allow_empty=True,
        )
    except SolcError as exc:
        if exc.error_dict is not None:  # the compiler ran and reported errors
            raise CompileError(exc.message.strip()) from None
        raise CompileError(f"{compiler_path()} failed: {exc}") from None
    except (OSError, ValueError) as exc:  # could not run, or no JSON on stdout
        raise CompileError(f"{compiler_path()} failed: {exc}") from exc
    for error in output.get("errors", []):
        if error.get("severity") != "error":
            logger.warning("%s", error.get("formattedMessage") or error.get("message"))
    return output


def compile_contracts(root: Path = PROJECT_ROOT) -> dict[str, dict[str, Any]]:
    """Compile the project at ``root``; map each of its contracts' names to an artifact.

    Only contracts defined in the project's own sources are returned (not the
    OpenZeppelin ones they import).  Each artifact holds ``contractName``,
    ``sourceName``, ``abi``, ``bytecode``, ``deployedBytecode`` (0x-prefixed),
    ``immutableReferences``, ``linkReferences``, ``methodIdentifiers``,
    ``userdoc``, ``devdoc``, ``metadata`` (the compiler's metadata JSON string),
    ``compiler`` (version and settings) and ``sourceHashes`` (sha256 of every
    source the contract depends on, by source unit name).
    """
    root = root.resolve()
    input_data = standard_input(root)
    own = set(project_sources(root))
    if not own:
        return {}
    output = run_compiler(input_data, root)
    contents = {name: src["content"] for name, src in input_data["sources"].items()}
    version = compiler_version()
    settings = compiler_settings()

    artifacts: dict[str, dict[str, Any]] = {}
    for source_name in sorted(output.get("contracts", {})):
        if source_name not in own:
            continue
        for name, compiled in sorted(output["contracts"][source_name].items()):
            if name in artifacts:
                raise CompileError(
                    f"contract name {name} is defined in both "
                    f"{artifacts[name]['sourceName']} and {source_name}"
                )
            metadata_text: str = compiled.get("metadata", "")
            metadata = json.loads(metadata_text) if metadata_text else {}
            dependencies = sorted(metadata.get("sources", {}))
            evm = compiled.get("evm", {})
            bytecode = evm.get("bytecode", {})
            deployed = evm.get("deployedBytecode", {})
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": compiled.get("abi", []),
                "bytecode": "0x" + bytecode.get("object", ""),
                "deployedBytecode": "0x" + deployed.get("object", ""),
                "immutableReferences": deployed.get("immutableReferences", {}),
                "linkReferences": bytecode.get("linkReferences", {}),
                "methodIdentifiers": evm.get("methodIdentifiers", {}),
                "userdoc": compiled.get("userdoc", {}),
                "devdoc": compiled.get("devdoc", {}),
                "metadata": metadata_text,
                "compiler": {"version": version, "settings": settings},
                "sourceHashes": {
                    dep: source_hash(contents[dep]) for dep in dependencies if dep in contents
                },
            }
    return artifacts
