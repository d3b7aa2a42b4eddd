"""Tests for the solc adapter (chain/bin/solc), chain.compile and chain.artifacts.

Every compile goes through the WebAssembly compiler (seconds with OpenZeppelin
imports), so expensive results are shared through module-scoped fixtures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chain import artifacts
from chain.compile import (
    ADAPTER,
    COMPILER_SETTINGS,
    NODE_MODULES,
    compile_contracts,
    compiler_path,
    compiler_version,
    import_paths,
    pinned_version,
    project_sources,
    resolve_import,
)
from chain.config import PROJECT_ROOT
from chain.errors import CompileError

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "solc").is_dir(),
    reason="needs node and the npm solc package (npm ci)",
)

TINY = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

contract Tiny {
    uint256 public value = 7;

    function set(uint256 v) external {
        value = v;
    }
}
"""

TOKEN = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import "./lib/Math2.sol"; // import "commented/out.sol";

/* import "also/commented.sol"; */
contract Points is ERC20 {
    string private constant NOTE = "// not a comment; import 'nope.sol'";

    constructor() ERC20("Points", "PTS") {}

    function double(uint256 x) external pure returns (uint256) {
        return Math2.twice(x);
    }
}
"""

MATH2 = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

library Math2 {
    function twice(uint256 x) internal pure returns (uint256) {
        return 2 * x;
    }
}
"""

MOCK = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Points} from "../Points.sol";

contract PointsMock is Points {
    uint256 public immutable seed;

    constructor(uint256 s) {
        seed = s;
    }
}
"""


def run_adapter(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADAPTER), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


def standard_input(sources: dict[str, str], outputs: list[str], ast: bool = False) -> str:
    selection: dict[str, Any] = {"*": {"*": outputs}}
    if ast:
        selection["*"][""] = ["ast"]
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": {"optimizer": {"enabled": True, "runs": 200}, "outputSelection": selection},
        }
    )


def write_project(root: Path) -> None:
    (root / "contracts" / "lib").mkdir(parents=True)
    (root / "contracts" / "mocks").mkdir()
    (root / "contracts" / "artifacts").mkdir()
    (root / "contracts" / "Points.sol").write_text(TOKEN)
    (root / "contracts" / "lib" / "Math2.sol").write_text(MATH2)
    (root / "contracts" / "mocks" / "PointsMock.sol").write_text(MOCK)
    # never compiled: lives under contracts/artifacts/
    (root / "contracts" / "artifacts" / "Broken.sol").write_text("this is not solidity")


# ---------------------------------------------------------------------------
# adapter


def test_adapter_version_is_native_format() -> None:
    result = run_adapter("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "solc, the solidity compiler commandline interface"
    assert re.fullmatch(r"Version: \d+\.\d+\.\d+\+commit\.[0-9a-f]{8}\.Linux\.g\+\+", lines[1])
    assert lines[1].startswith(f"Version: {pinned_version()}+commit.")
    assert result.stdout.endswith("\n") and len(lines) == 2


def test_adapter_standard_json_stdin_gives_clean_json() -> None:
    result = run_adapter(
        "--standard-json",
        "--allow-paths",
        ".",
        "--some-future-flag",
        stdin=standard_input({"Tiny.sol": TINY}, ["abi", "evm.bytecode.object"]),
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    tiny = output["contracts"]["Tiny.sol"]["Tiny"]
    assert {entry["name"] for entry in tiny["abi"]} == {"value", "set"}
    assert re.fullmatch(r"[0-9a-f]+", tiny["evm"]["bytecode"]["object"])


def test_adapter_standard_json_reports_errors_in_json() -> None:
    result = run_adapter(
        "--standard-json", stdin=standard_input({"Bad.sol": "contract {"}, ["abi"])
    )
    assert result.returncode == 0
    errors = json.loads(result.stdout)["errors"]
    assert any(e["severity"] == "error" and e["type"] == "ParserError" for e in errors)


@pytest.fixture(scope="module")
def erc20_standard_output() -> tuple[str, dict[str, Any]]:
    """The real OpenZeppelin ERC20, compiled with every heavy output requested."""
    source = 'pragma solidity ^0.8.20;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\n'
    result = run_adapter(
        "--standard-json",
        "--base-path",
        str(PROJECT_ROOT),
        "--include-path",
        str(NODE_MODULES),
        stdin=standard_input(
            {"Imports.sol": source},
            ["abi", "evm.bytecode", "evm.deployedBytecode", "evm.legacyAssembly", "metadata"],
            ast=True,
        ),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(result.stdout)


def test_adapter_large_output_is_not_truncated(
    erc20_standard_output: tuple[str, dict[str, Any]],
) -> None:
    text, output = erc20_standard_output
    assert len(text) > 128 * 1024  # well beyond a 64 KiB pipe buffer
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"]
    assert output["contracts"]["@openzeppelin/contracts/token/ERC20/ERC20.sol"]["ERC20"]["abi"]


def test_adapter_resolves_openzeppelin_imports(
    erc20_standard_output: tuple[str, dict[str, Any]],
) -> None:
    _, output = erc20_standard_output
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in output["sources"]
    assert "@openzeppelin/contracts/utils/Context.sol" in output["sources"]


def test_adapter_resolves_node_modules_without_flags(tmp_path: Path) -> None:
    source = 'pragma solidity ^0.8.20;\nimport "@openzeppelin/contracts/utils/Context.sol";\n'
    result = run_adapter(
        "--standard-json", stdin=standard_input({"C.sol": source}, ["abi"]), cwd=tmp_path
    )
    output = json.loads(result.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"], output
    assert "@openzeppelin/contracts/utils/Context.sol" in output["sources"]


def test_adapter_combined_json(tmp_path: Path) -> None:
    (tmp_path / "Tiny.sol").write_text(TINY)
    result = run_adapter(
        "--combined-json",
        "abi,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes,ast",
        "--optimize",
        "--optimize-runs",
        "300",
        "--evm-version",
        "cancun",
        "Tiny.sol",
        "--allow-paths",
        ".",
        "Tiny.sol",  # crytic-compile names the target twice
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["version"].startswith(f"{pinned_version()}+commit.")
    assert list(output["contracts"]) == ["Tiny.sol:Tiny"]
    tiny = output["contracts"]["Tiny.sol:Tiny"]
    assert {"abi", "bin", "bin-runtime", "srcmap", "srcmap-runtime", "userdoc", "devdoc"} <= set(
        tiny
    )
    assert tiny["hashes"] == {"set(uint256)": "60fe47b1", "value()": "3fa4f245"}
    assert output["sources"]["Tiny.sol"]["id"] == 0
    assert output["sources"]["Tiny.sol"]["AST"]["nodeType"] == "SourceUnit"
    assert output["sourceList"] == ["Tiny.sol"]


def test_adapter_combined_json_fails_on_errors(tmp_path: Path) -> None:
    (tmp_path / "Bad.sol").write_text("pragma solidity ^0.8.20;\ncontract Bad { uint x }\n")
    result = run_adapter("--combined-json", "abi,bin", "Bad.sol", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "ParserError" in result.stderr


# ---------------------------------------------------------------------------
# chain.compile


def test_import_paths_ignores_comments_and_strings() -> None:
    assert import_paths(TOKEN) == [
        "@openzeppelin/contracts/token/ERC20/ERC20.sol",
        "./lib/Math2.sol",
    ]
    assert import_paths("import * as X from \"a.sol\"; import {A as B, C} from 'b.sol';") == [
        "a.sol",
        "b.sol",
    ]
    assert import_paths('import "c.sol" as C;') == ["c.sol"]


@pytest.mark.parametrize(
    ("importer", "path", "expected"),
    [
        ("contracts/mocks/M.sol", "../Points.sol", "contracts/Points.sol"),
        ("contracts/Points.sol", "./lib/Math2.sol", "contracts/lib/Math2.sol"),
        ("contracts/a/b/C.sol", "../../x/./y.sol", "contracts/x/y.sol"),
        (
            "@oz/contracts/token/ERC20/ERC20.sol",
            "./IERC20.sol",
            "@oz/contracts/token/ERC20/IERC20.sol",
        ),
        ("contracts/Points.sol", "@openzeppelin/contracts/x.sol", "@openzeppelin/contracts/x.sol"),
    ],
)
def test_resolve_import(importer: str, path: str, expected: str) -> None:
    assert resolve_import(importer, path) == expected


def test_compiler_selection() -> None:
    path = compiler_path()
    assert path.is_file()
    assert compiler_version().startswith(pinned_version() + "+commit.")
    if shutil.which("solc") is None:
        assert path == ADAPTER


def test_syntax_error_raises_compile_error(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract Broken { uint256 x }\n"
    )
    with pytest.raises(CompileError) as excinfo:
        compile_contracts(tmp_path)
    message = str(excinfo.value)
    assert "ParserError" in message
    assert "contracts/Broken.sol" in message


def test_empty_project_compiles_to_nothing(tmp_path: Path) -> None:
    assert compile_contracts(tmp_path) == {}


# ---------------------------------------------------------------------------
# chain.artifacts (one temp project, built once)


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("project")
    write_project(root)
    stale = root / "contracts" / "artifacts" / "Removed.json"
    stale.write_text("{}\n")
    return root, artifacts.build(root)


def test_project_sources_skip_artifacts_dir(built_project: tuple[Path, list[Path]]) -> None:
    root, _ = built_project
    assert project_sources(root) == [
        "contracts/Points.sol",
        "contracts/lib/Math2.sol",
        "contracts/mocks/PointsMock.sol",
    ]


def test_build_writes_one_artifact_per_own_contract(built_project: tuple[Path, list[Path]]) -> None:
    root, written = built_project
    out = root / "contracts" / "artifacts"
    assert [p.name for p in written] == ["Math2.json", "Points.json", "PointsMock.json"]
    assert sorted(p.name for p in out.glob("*.json")) == [p.name for p in written]  # stale gone
    assert not (out / "ERC20.json").exists()


def test_artifact_content(built_project: tuple[Path, list[Path]]) -> None:
    root, _ = built_project
    points = artifacts.load_artifact("Points", root)
    version = compiler_version()
    assert points["_generated"] == (
        f"Generated by `pointsnet contracts build` with solc {version}. Do not edit."
    )
    assert points["contractName"] == "Points"
    assert points["sourceName"] == "contracts/Points.sol"
    assert points["bytecode"].startswith("0x60") and points["deployedBytecode"].startswith("0x60")
    assert points["methodIdentifiers"]["double(uint256)"] == "eee97206"
    assert points["compiler"]["version"] == version
    settings = points["compiler"]["settings"]
    for name in ("optimizer", "evmVersion", "viaIR"):
        assert settings[name] == COMPILER_SETTINGS[name]
    assert json.loads(points["metadata"])["settings"]["evmVersion"] == "cancun"
    hashes = points["sourceHashes"]
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in hashes
    assert "contracts/lib/Math2.sol" in hashes
    assert "contracts/mocks/PointsMock.sol" not in hashes
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values())

    mock = artifacts.load_artifact("PointsMock", root)
    assert mock["immutableReferences"]  # the immutable `seed`
    assert "contracts/Points.sol" in mock["sourceHashes"]

    text = (root / "contracts" / "artifacts" / "Points.json").read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "_generated"')


def test_check_clean_then_detects_source_change(built_project: tuple[Path, list[Path]]) -> None:
    root, _ = built_project
    assert artifacts.check(root) == []

    math2 = root / "contracts" / "lib" / "Math2.sol"
    original = math2.read_text()
    try:
        math2.write_text(original.replace("2 * x", "x + x"))
        problems = artifacts.check(root)
    finally:
        math2.write_text(original)
    assert problems
    joined = "\n".join(problems)
    assert "Points.json differs" in joined
    assert "contracts/lib/Math2.sol" in joined  # its sourceHash changed


def test_check_reports_missing_and_extra(built_project: tuple[Path, list[Path]]) -> None:
    root, _ = built_project
    out = root / "contracts" / "artifacts"
    saved = (out / "Math2.json").read_bytes()
    (out / "Math2.json").unlink()
    (out / "Ghost.json").write_text("{}\n")
    try:
        problems = artifacts.check(root)
    finally:
        (out / "Math2.json").write_bytes(saved)
        (out / "Ghost.json").unlink()
    assert any("Math2.json is missing" in p for p in problems)
    assert any("Ghost.json" in p and "no contract" in p for p in problems)


def test_load_artifact_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        artifacts.load_artifact("Nope", tmp_path)
