"""The wallet page's own parts, without a browser: messages, QR codes, badge art."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gateway import errors as gateway_errors
from gateway.rules.badges import BADGES
from gateway.services import accounts, badges, consent, member_view, sessions, transfers
from gateway.services.badge_art import badge_svg

#: The services behind the wallet's endpoints.
WALLET_SERVICES = (sessions, member_view, consent, transfers, accounts, badges)
WALLET = Path(__file__).resolve().parents[2] / "wallet"
LANGUAGES = ("en", "zh-CN")
NODE = shutil.which("node")


def messages(lang: str) -> dict[str, str]:
    return dict(json.loads((WALLET / "i18n" / f"{lang}.json").read_text(encoding="utf-8")))


def keys_the_page_uses() -> set[str]:
    """Every message key named literally in the scripts and the HTML, plus the dynamic ones."""
    used: set[str] = set()
    for script in (WALLET / "js").rglob("*.js"):
        used |= set(re.findall(r"\bt\(\s*\"([a-zA-Z0-9_.]+)\"", script.read_text()))
    html = (WALLET / "index.html").read_text()
    used |= set(re.findall(r'data-i18n="([^"]+)"', html))
    used |= {pair.split(":")[1] for pair in re.findall(r'data-i18n-attr="([^"]+)"', html)}
    used |= {f"tier.{n}" for n in range(5)}
    used |= {f"badge.{badge.key}" for badge in BADGES}
    used |= {f"history.kind.{kind}" for kind in member_view.HISTORY_KINDS}
    for prefix in ("status", "send.status", "rewards.status"):
        used |= {f"{prefix}.{status}" for status in ("submitted", "confirmed", "failed")}
    return used


def error_codes_members_can_meet() -> set[str]:
    """Stable codes of the wallet's errors and of the gateway errors it raises."""
    source = "\n".join(Path(str(module.__file__)).read_text() for module in WALLET_SERVICES)
    codes = set(re.findall(r"code = \"([a-z_]+)\"", source))
    codes |= set(
        re.findall(r"(?:SignInRejected|WalletConflict|WrongSessionKind)\(\s*\"([a-z_]+)\"", source)
    )
    for name in (
        "InsufficientPoints", "SignatureRejected", "SignatureExpired", "SessionRequired",
        "LinkCodeInvalid", "NotFound", "InvalidRequest",
    ):  # fmt: skip
        codes.add(getattr(gateway_errors, name).code)
    return codes | {"chain_unavailable", "rate_limited", "network"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_the_page_uses_exists(lang: str) -> None:
    missing = keys_the_page_uses() - set(messages(lang))
    assert not missing, f"{lang}.json lacks {sorted(missing)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_error_code_has_a_sentence(lang: str) -> None:
    missing = {f"errors.{c}" for c in error_codes_members_can_meet()} - set(messages(lang))
    assert not missing, f"{lang}.json lacks {sorted(missing)}"


def test_both_languages_have_the_same_messages_and_placeholders() -> None:
    english, chinese = messages("en"), messages("zh-CN")
    assert set(english) == set(chinese)
    for key, text in english.items():
        assert text.strip() and chinese[key].strip(), key
        placeholders = set(re.findall(r"\{(\w+)\}", text))
        assert placeholders == set(re.findall(r"\{(\w+)\}", chinese[key])), key


def test_no_script_or_style_is_inline_and_nothing_comes_from_a_cdn() -> None:
    html = (WALLET / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert " style=" not in html and "<style" not in html
    for path in WALLET.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text()
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path


# ---------------------------------------------------------------------- QR codes


def run_qr(script: str, tmp_path: Path) -> object:
    """Run ``script`` in node with the page's QR encoder imported as ``qr``."""
    if NODE is None:
        pytest.skip("node is not installed")
    module = tmp_path / "qr.mjs"
    module.write_text((WALLET / "js" / "qr.js").read_text())
    main = tmp_path / "main.mjs"
    main.write_text(f'import * as qr from "./qr.mjs";\n{script}\n')
    out = subprocess.run([NODE, str(main)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_qr_encoder_matches_reference_symbols(tmp_path: Path) -> None:
    """Symbols of versions 1, 4, 9 (with version information) and 10, module for module."""
    reference = json.loads((Path(__file__).parent / "qr_reference.json").read_text())
    symbols = reference["symbols"]
    cases = json.dumps([[s["text"], s["mask"]] for s in symbols])
    ours = run_qr(
        f"console.log(JSON.stringify({cases}.map(([text, mask]) => {{"
        "const q = qr.encodeQr(text, {mask});"
        "return {version: q.version, rows: q.modules.map(r => r.map(b => b ? 1 : 0).join(''))};"
        "})));",
        tmp_path,
    )
    assert isinstance(ours, list)
    for symbol, mine in zip(symbols, ours, strict=True):
        assert mine["version"] == symbol["version"]
        assert mine["rows"] == symbol["rows"], f"version {symbol['version']} differs"


def test_qr_svg_of_an_address_is_a_square_image(tmp_path: Path) -> None:
    address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    svg = run_qr(f'console.log(JSON.stringify(qr.qrSvg("{address}")));', tmp_path)
    assert isinstance(svg, str)
    root = ET.fromstring(svg)
    assert root.get("viewBox") == "0 0 37 37"  # version 3: 29 modules + 2 x 4 quiet zone
    assert root.get("role") == "img" and root.get("aria-label") == address


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) not installed")
def test_qr_codes_decode_with_an_independent_reader(tmp_path: Path) -> None:
    texts = ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "积分 ✓ pointsnet", "x" * 200]
    for i, text in enumerate(texts):
        rows = run_qr(
            f"console.log(JSON.stringify(qr.encodeQr({json.dumps(text)}).modules"
            ".map(r => r.map(b => b ? 1 : 0).join(''))));",
            tmp_path,
        )
        assert isinstance(rows, list)
        scale, quiet = 4, 4
        size = (len(rows) + 2 * quiet) * scale
        image = [f"P1\n{size} {size}"]
        for y in range(size):
            row_y = y // scale - quiet
            image.append(
                " ".join(
                    rows[row_y][x // scale - quiet]
                    if 0 <= row_y < len(rows) and 0 <= x // scale - quiet < len(rows)
                    else "0"
                    for x in range(size)
                )
            )
        pbm = tmp_path / f"qr{i}.pbm"
        pbm.write_text("\n".join(image) + "\n")
        decoded = subprocess.run(
            ["zbarimg", "-q", "--raw", str(pbm)], capture_output=True, text=True, check=True
        )
        assert decoded.stdout.rstrip("\n") == text


# ---------------------------------------------------------------------- badge art


def test_badge_art_escapes_its_text_and_marks_soulbound_badges() -> None:
    svg = badge_svg('<script>alert("x")</script>', "leaf", soulbound=True, description="a & b")
    root = ET.fromstring(svg)  # well-formed XML
    assert "<script" not in svg and "a &amp; b" in svg
    assert root.find(".//{http://www.w3.org/2000/svg}g[@aria-label='soulbound']") is not None
    plain = badge_svg("Plain", "no-such-icon", soulbound=False)
    assert "soulbound" not in plain and ET.fromstring(plain) is not None
