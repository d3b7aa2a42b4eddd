"""The CBOR metadata tail solc appends to runtime code, and the IPFS hash it carries.

solc ends every runtime code with a CBOR map followed by its own length in two
big-endian bytes.  With the project's settings (``bytecodeHash: "ipfs"``,
``appendCBOR: true``) the map is ``{"ipfs": <34-byte multihash>, "solc": <3 bytes
major.minor.patch>}``: the multihash is that of the contract's metadata JSON as an
IPFS file (CIDv0), so two codes with the same tail were compiled from the same
metadata, hence from the same sources, byte for byte, and the same settings.

This module decodes the tail (a small CBOR reader: unsigned and negative integers,
byte and text strings, arrays, maps, true/false/null; nothing else appears there)
and computes the CIDv0 of a file the way ``ipfs add`` and solc do for a file of one
chunk: a dag-pb node whose ``Data`` is a UnixFS ``File`` message holding the bytes
and their size, hashed with sha256.  Files above one chunk (256 KiB) are refused:
solc's metadata and the project's sources are far below it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

#: The IPFS default chunk size: a file up to this is a single dag-pb node.
IPFS_CHUNK_BYTES = 262_144
#: Multihash prefix of a sha2-256 digest (code 0x12, length 32).
SHA256_MULTIHASH = b"\x12\x20"

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# IPFS CIDv0


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def unixfs_file_node(data: bytes) -> bytes:
    """The dag-pb block of a single-chunk UnixFS file holding ``data``.

    ``PBNode { Data = UnixFS.Data { Type = File (2), Data = data, filesize = len } }``
    with no links; an empty file has no ``Data`` bytes field (as ``ipfs add``).
    """
    if len(data) > IPFS_CHUNK_BYTES:
        raise ValueError(
            f"{len(data):,} bytes is more than one IPFS chunk ({IPFS_CHUNK_BYTES:,}): "
            "multi-chunk files are not supported"
        )
    unixfs = b"\x08\x02"  # field 1 (Type), varint 2 (File)
    if data:
        unixfs += _length_delimited(2, data)
    unixfs += b"\x18" + _varint(len(data))  # field 3 (filesize), varint
    return _length_delimited(1, unixfs)


def ipfs_multihash(data: bytes) -> bytes:
    """The sha2-256 multihash (34 bytes) of ``data`` added to IPFS as one file."""
    return SHA256_MULTIHASH + hashlib.sha256(unixfs_file_node(data)).digest()


def base58(raw: bytes) -> str:
    """Bitcoin-alphabet base58 (leading zero bytes become ``1``)."""
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _BASE58[rest] + out
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + out


def cid_v0(data: bytes) -> str:
    """The CIDv0 (``Qm...``) ``ipfs add`` gives ``data``: base58 of its multihash."""
    return base58(ipfs_multihash(data))


# ---------------------------------------------------------------------------
# CBOR


class CborError(ValueError):
    """The bytes are not the kind of CBOR solc writes."""


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None or pos + size > len(data):
        raise CborError(f"unsupported or truncated CBOR length at byte {pos}")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def cbor_item(data: bytes, pos: int = 0) -> tuple[Any, int]:
    """Decode the CBOR item at ``pos``; return it and the position after it."""
    if pos >= len(data):
        raise CborError("truncated CBOR")
    major, info = data[pos] >> 5, data[pos] & 0x1F
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info not in simple:
            raise CborError(f"unsupported CBOR simple value {info} at byte {pos}")
        return simple[info], pos + 1
    value, pos = _argument(data, pos + 1, info)
    if major == 0:
        return value, pos
    if major == 1:
        return -1 - value, pos
    if major in (2, 3):
        if pos + value > len(data):
            raise CborError("truncated CBOR string")
        chunk = data[pos : pos + value]
        try:
            return (chunk if major == 2 else chunk.decode("utf-8")), pos + value
        except UnicodeDecodeError as exc:
            raise CborError(f"CBOR text is not UTF-8: {exc}") from exc
    if major == 4:
        items = []
        for _ in range(value):
            item, pos = cbor_item(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        mapping: dict[Any, Any] = {}
        for _ in range(value):
            key, pos = cbor_item(data, pos)
            mapping[key], pos = cbor_item(data, pos)
        return mapping, pos
    raise CborError(f"unsupported CBOR major type {major} at byte {pos}")


@dataclass(frozen=True)
class MetadataTail:
    """The decoded CBOR tail of one runtime code."""

    raw: bytes  # the CBOR map and its 2-byte length
    fields: dict[str, Any]

    @property
    def ipfs(self) -> str | None:
        """The metadata's CIDv0, when the tail carries an ipfs multihash."""
        value = self.fields.get("ipfs")
        return base58(value) if isinstance(value, bytes) else None

    @property
    def solc(self) -> str | None:
        """The compiler version: ``"0.8.30"`` (3 bytes) or the text of a pre-release."""
        value = self.fields.get("solc")
        if isinstance(value, bytes) and len(value) == 3:
            return ".".join(str(b) for b in value)
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cbor": self.raw.hex(),
            "ipfs": self.ipfs,
            "solc": self.solc,
            "other_keys": sorted(k for k in self.fields if k not in ("ipfs", "solc")),
        }


def metadata_tail(code: bytes) -> MetadataTail | None:
    """The CBOR metadata tail of ``code``, or None when it does not end with one."""
    if len(code) < 2:
        return None
    size = int.from_bytes(code[-2:], "big")
    if size == 0 or size + 2 > len(code):
        return None
    body = code[-2 - size : -2]
    try:
        fields, end = cbor_item(body)
    except CborError:
        return None
    if end != len(body) or not isinstance(fields, dict) or not fields:
        return None
    if not all(isinstance(k, str) for k in fields):
        return None
    return MetadataTail(code[-2 - size :], fields)
