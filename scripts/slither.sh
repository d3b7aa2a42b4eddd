#!/usr/bin/env bash
# Static analysis of contracts/ with slither, failing on any high or medium
# finding that contracts/slither.triage.md does not explain.
#
#   scripts/slither.sh                 install slither if needed, analyse, check the triage
#   scripts/slither.sh --install-only  install slither if needed (what setup.sh runs)
#
# slither-analyzer pins an older web3 than pointsnet, so it lives in a virtual
# environment of its own (.venv-slither), installed once (again only when the
# pinned version changes). It compiles through our adapter chain/bin/solc (the
# pinned npm compiler, with the settings of chain/compile.py), so the analysis
# needs no network and no native solc. The full report is written to
# .pointsnet/slither.json.
set -euo pipefail
cd "$(dirname "$0")/.."

SLITHER_VERSION=0.11.6
VENV=.venv-slither
PYTHON=${PYTHON:-python3}

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("slither-analyzer"))' \
    2>/dev/null || true
}

if [[ ! -x $VENV/bin/slither || "$(installed_version)" != "$SLITHER_VERSION" ]]; then
  echo "installing slither-analyzer $SLITHER_VERSION into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "slither-analyzer==$SLITHER_VERSION"
fi
[[ "${1:-}" == "--install-only" ]] && exit 0

mkdir -p .pointsnet
report=.pointsnet/slither.json
rm -f "$report"
# The compiler settings of chain/compile.py (the contracts need the IR pipeline).
# slither exits non-zero whenever it finds anything; the triage below decides.
"$VENV/bin/slither" contracts/ \
  --solc chain/bin/solc \
  --solc-remaps "@openzeppelin/=node_modules/@openzeppelin/" \
  --solc-args "--via-ir --optimize --optimize-runs 200 --evm-version cancun" \
  --filter-paths "node_modules" \
  --exclude-informational --exclude-optimization \
  --json "$report" >/dev/null 2>.pointsnet/slither.log || true
if [[ ! -s $report ]]; then
  echo "slither produced no report; its output:" >&2
  cat .pointsnet/slither.log >&2
  exit 2
fi

"$VENV/bin/python" - "$report" contracts/slither.triage.md <<'PY'
"""Compare slither's high and medium findings with the triage table."""
import json
import re
import sys

report = json.load(open(sys.argv[1]))
if not report.get("success"):
    sys.exit(f"slither failed: {report.get('error')}")
# A triage row: | `check` | Impact | `Contract.function` | verdict | why |
rows = re.findall(r"^\|\s*`([\w-]+)`\s*\|\s*(\w+)\s*\|\s*`([\w.]+)`\s*\|", open(sys.argv[2]).read(), re.M)
triaged = {(check, where) for check, _impact, where in rows}


def where(result: dict) -> str:
    element = result["elements"][0] if result["elements"] else {}
    parent = element.get("type_specific_fields", {}).get("parent", {}).get("name")
    return f"{parent}.{element.get('name')}" if parent else str(element.get("name"))


findings = report["results"].get("detectors", [])
serious = [r for r in findings if r["impact"] in ("High", "Medium")]
untriaged = [r for r in serious if (r["check"], where(r)) not in triaged]
seen = {(r["check"], where(r)) for r in serious}
print(f"slither: {len(findings)} findings, {len(serious)} high or medium, "
      f"{len(serious) - len(untriaged)} of them triaged in contracts/slither.triage.md")
for check, place in sorted(triaged - seen):
    print(f"  note: triage row `{check}` `{place}` matches no finding any more (remove it?)")
for r in untriaged:
    print(f"\nUNTRIAGED {r['impact']} ({r['confidence']} confidence) {r['check']} in {where(r)}:")
    print("  " + r["description"].strip().replace("\n", "\n  "))
if untriaged:
    sys.exit(f"\n{len(untriaged)} high/medium finding(s) not in contracts/slither.triage.md")
PY
