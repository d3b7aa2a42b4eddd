"""Write the verification packages (:mod:`chain.verification`) as files.

Layout of ``out``::

    README.md                  the network, each contract's verdict, where to go next
    summary.json               the same, for programs
    <role>-<Contract>/         one per deployed contract (timelocks: -<address> appended
                               when there are several)
        standard-input.json    the solc standard-JSON input (Blockscout, Etherscan, Sourcify)
        metadata.json          the compiler's metadata JSON, its exact bytes (Sourcify)
        sources/<unit name>    every source the metadata names (Sourcify's metadata upload)
        constructor-args.txt   ABI-encoded arguments, hex without 0x (empty: none)
        sourcify-request.json  the body of Sourcify's POST /v2/verify/{chainId}/{address}
        README.md              the values each verifier asks for, and how to submit them

Files are written with sorted keys and a trailing newline, so a second run over the
same network writes the same bytes; ``metadata.json`` is written as solc produced it
(its IPFS hash is the one in the deployed code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.verification import Package

#: Etherscan's ``licenseType`` numbers by SPDX identifier (its API's table).
ETHERSCAN_LICENSES = {
    "UNLICENSED": 1,
    "Unlicense": 2,
    "MIT": 3,
    "GPL-2.0": 4,
    "GPL-3.0": 5,
    "LGPL-2.1": 6,
    "LGPL-3.0": 7,
    "BSD-2-Clause": 8,
    "BSD-3-Clause": 9,
    "MPL-2.0": 10,
    "OSL-3.0": 11,
    "Apache-2.0": 12,
    "AGPL-3.0": 13,
    "BUSL-1.1": 14,
}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def directory_names(packages: list[Package]) -> list[str]:
    """``<role>-<Contract>``, with ``-<address>`` when a role has several contracts."""
    count: dict[str, int] = {}
    for package in packages:
        count[package.role] = count.get(package.role, 0) + 1
    return [
        f"{p.role}-{p.contract}" + (f"-{p.address}" if count[p.role] > 1 else "") for p in packages
    ]


def sourcify_request(package: Package) -> dict[str, Any]:
    """The JSON body of Sourcify's ``POST /v2/verify/{chainId}/{address}``."""
    body: dict[str, Any] = {
        "stdJsonInput": package.standard_input,
        "compilerVersion": package.compiler,
        "contractIdentifier": package.identifier,
    }
    if package.creation_tx:
        body["creationTransactionHash"] = package.creation_tx
    return body


def settings_text(standard_input: dict[str, Any]) -> str:
    """The compiler settings an explorer's form asks for, in one line."""
    settings = standard_input["settings"]
    optimizer = settings.get("optimizer", {})
    remappings = settings.get("remappings") or []
    return (
        f"optimizer {'on' if optimizer.get('enabled') else 'off'}, "
        f"{optimizer.get('runs', 200)} runs, viaIR {'on' if settings.get('viaIR') else 'off'}, "
        f"evmVersion {settings.get('evmVersion', 'default')}, metadata bytecodeHash "
        f"{settings.get('metadata', {}).get('bytecodeHash', 'ipfs')}, "
        + (
            f"remappings {remappings}"
            if remappings
            else "no remappings (imports such as "
            "`@openzeppelin/...` are source unit names, their content included)"
        )
    )


def package_readme(package: Package) -> str:
    """How to submit this directory to Sourcify, Blockscout and Etherscan."""
    args = package.constructor_args
    if args is None:
        args_text = "not found (see the notes)"
    elif len(args) <= 64:
        args_text = f"`{args.hex() or '(none)'}`"
    else:
        args_text = f"`constructor-args.txt` ({len(args):,} bytes)"
    licence_no = ETHERSCAN_LICENSES.get(package.license, 1)
    check = package.check
    lines = [
        f"# {package.contract} ({package.role}) at {package.address}",
        "",
        f"- chain id: {package.chain_id}",
        f"- contract: `{package.identifier}`",
        f"- compiler: `{package.explorer_compiler}` (Sourcify: `{package.compiler}`)",
        f"- settings (in `standard-input.json`): {settings_text(package.standard_input)}",
        f"- license: {package.license} (Etherscan licenseType {licence_no})",
        f"- constructor arguments: {args_text}, {package.constructor_args_from}",
        f"- creation transaction: {package.creation_tx or 'unknown'}",
        f"- metadata IPFS hash: {check.metadata_ipfs}; deployed code carries "
        f"{check.onchain_ipfs or 'none'} (solc {check.onchain_solc or '?'})",
        f"- verdict here: **{check.verdict}**" + (f" ({check.note})" if check.note else ""),
        *[f"- note: {note}" for note in package.notes],
        "",
        "## Sourcify (exact match: the metadata hash is checked)",
        "",
        "API: `curl -X POST -H 'Content-Type: application/json' --data @sourcify-request.json "
        f"https://sourcify.dev/server/v2/verify/{package.chain_id}/{package.address}`, then "
        "poll `GET https://sourcify.dev/server/v2/verify/<verificationId>` until it is done.",
        "Web: https://verify.sourcify.dev, chain and address above, method *Standard JSON* "
        "(`standard-input.json`, the compiler version and the contract identifier) or "
        "*Metadata.json* (`metadata.json` and every file under `sources/`).",
        "",
        "## Blockscout",
        "",
        "Web: the contract's page, *Verify & publish*, method *Solidity (Standard JSON "
        f"input)*: compiler `{package.explorer_compiler}`, file `standard-input.json`, "
        "constructor arguments from `constructor-args.txt` (or let it fetch them).",
        "API: `curl -X POST <explorer>/api/v2/smart-contracts/"
        f"{package.address}/verification/via/standard-input -F compiler_version="
        f"{package.explorer_compiler} -F contract_name={package.contract} -F license_type="
        f"{package.license.lower()} -F autodetect_constructor_args=false -F "
        "constructor_args=$(cat constructor-args.txt) -F 'files[0]=@standard-input.json'`.",
        "Blockscout also takes the Sourcify route above (it imports Sourcify's exact matches).",
        "",
        "## Etherscan (and Etherscan-compatible APIs)",
        "",
        "Web: *Verify and Publish*, compiler type *Solidity (Standard-Json-Input)*, compiler "
        f"`{package.explorer_compiler}`, license {package.license}, upload "
        "`standard-input.json`, paste `constructor-args.txt`.",
        "API (v2): `curl https://api.etherscan.io/v2/api?chainid="
        f"{package.chain_id} -d module=contract -d action=verifysourcecode -d apikey=$KEY "
        "-d codeformat=solidity-standard-json-input --data-urlencode "
        f"sourceCode@standard-input.json -d contractaddress={package.address} -d "
        f"contractname={package.identifier} -d compilerversion={package.explorer_compiler} "
        "-d constructorArguements=$(cat constructor-args.txt) -d "
        f"licenseType={licence_no}` (the misspelt field is Etherscan's), then "
        "`action=checkverifystatus&guid=<result>`.",
        "",
    ]
    return "\n".join(lines)


def network_readme(packages: list[Package], names: list[str]) -> str:
    """The top README: the network, every contract's directory and verdict."""
    chain_id = packages[0].chain_id if packages else "?"
    lines = [
        f"# Verification files, chain {chain_id}",
        "",
        "Written by `pointsnet contracts verification-files`. One directory per deployed "
        "contract; each README says how to submit it (see docs/VERIFY.md).",
        "",
        "| contract | role | address | verdict | metadata IPFS hash |",
        "|---|---|---|---|---|",
    ]
    for package, name in zip(packages, names, strict=True):
        lines.append(
            f"| [{package.contract}]({name}/README.md) | {package.role} | {package.address} "
            f"| {package.check.verdict} | {package.check.metadata_ipfs} |"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def write_packages(packages: list[Package], out: Path) -> list[Path]:
    """Write every package under ``out``; returns the contract directories."""
    names = directory_names(packages)
    dirs: list[Path] = []
    for package, name in zip(packages, names, strict=True):
        folder = out / name
        _write(folder / "standard-input.json", _json(package.standard_input))
        _write(folder / "metadata.json", package.metadata_text)
        for unit, source in package.standard_input["sources"].items():
            _write(folder / "sources" / unit, source["content"])
        args = package.constructor_args
        _write(folder / "constructor-args.txt", "" if args is None else args.hex())
        _write(folder / "sourcify-request.json", _json(sourcify_request(package)))
        _write(folder / "README.md", package_readme(package))
        dirs.append(folder)
    _write(out / "README.md", network_readme(packages, names))
    summary = [dict(p.summary(), directory=n) for p, n in zip(packages, names, strict=True)]
    _write(out / "summary.json", _json(summary))
    return dirs
