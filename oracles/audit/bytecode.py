"""Comparing deployed runtime code with a build, as Sourcify defines its matches.

solc appends to the runtime code a CBOR map (`ipfs`: the multihash of the metadata
JSON, `solc`: the compiler version) followed by the map's length as two big-endian
bytes. The metadata JSON holds the hash of every source file and the settings, so:

- **exact** ("full match"): the code equals the build byte for byte, the CBOR tail
  included, once the immutable regions (filled by the constructor) are masked on both
  sides: same sources, same settings, same compiler;
- **partial**: the code equals the build except the CBOR tail: same executable code,
  but the metadata differs (comments, file names, NatSpec or settings that do not
  change the code);
- **mismatch**: the executable code differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CBOR_LENGTH_BYTES: Final = 2


class CodeMatch(StrEnum):
    EXACT = "exact"
    PARTIAL = "partial"
    MISMATCH = "mismatch"
    NO_CODE = "no_code"


@dataclass(frozen=True)
class MetadataTail:
    """The decoded CBOR tail of a runtime code (`raw` includes the length bytes)."""

    raw: bytes
    fields: dict[str, Any]

    @property
    def ipfs_cid(self) -> str | None:
        """The metadata's IPFS CIDv0 (`Qm...`), when the compiler embedded one."""
        multihash = self.fields.get("ipfs")
        return encode_base58(multihash) if isinstance(multihash, bytes) else None

    @property
    def compiler_version(self) -> str | None:
        version = self.fields.get("solc")
        if isinstance(version, bytes) and len(version) == 3:
            return ".".join(str(part) for part in version)
        return version if isinstance(version, str) else None


def encode_base58(data: bytes) -> str:
    """Bitcoin-alphabet base58 (how IPFS writes a CIDv0 multihash)."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(BASE58_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))


class _CborReader:
    """Just enough CBOR for solc's metadata map: unsigned ints, byte and text strings,
    maps, and the simple values true/false."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise ValueError("CBOR item runs past the end")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        widths = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in widths:
            raise ValueError("indefinite or reserved CBOR length")
        return int.from_bytes(self._take(widths[info]), "big")

    def read(self) -> Any:
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            simple = {20: False, 21: True}
            if info not in simple:
                raise ValueError("unsupported CBOR simple value")
            return simple[info]
        argument = self._argument(info)
        if major == 0:
            return argument
        if major == 2:
            return self._take(argument)
        if major == 3:
            return self._take(argument).decode("utf-8")
        if major == 5:
            return {self.read(): self.read() for _ in range(argument)}
        raise ValueError(f"unsupported CBOR major type {major}")


def split_metadata(code: bytes) -> tuple[bytes, MetadataTail | None]:
    """(executable part, decoded tail), or (code, None) when no valid tail is found."""
    if len(code) < CBOR_LENGTH_BYTES:
        return code, None
    length = int.from_bytes(code[-CBOR_LENGTH_BYTES:], "big")
    start = len(code) - CBOR_LENGTH_BYTES - length
    if length == 0 or start < 0:
        return code, None
    reader = _CborReader(code[start : len(code) - CBOR_LENGTH_BYTES])
    try:
        fields = reader.read()
    except (ValueError, UnicodeDecodeError):
        return code, None
    if not isinstance(fields, dict) or reader.offset != length:
        return code, None
    return code[:start], MetadataTail(code[start:], {str(k): v for k, v in fields.items()})


def mask_regions(code: bytes, regions: Iterable[tuple[int, int]]) -> bytes:
    """`code` with each (start, length) region zeroed (regions past the end are clipped)."""
    masked = bytearray(code)
    for start, length in regions:
        end = min(start + length, len(masked))
        if start < end:
            masked[start:end] = bytes(end - start)
    return bytes(masked)


def read_immutables(
    code: bytes, references: Mapping[str, Iterable[tuple[int, int]]]
) -> dict[str, str]:
    """The value the constructor wrote for each immutable (its first region), as 0x-hex."""
    values: dict[str, str] = {}
    for key, regions in references.items():
        for start, length in regions:
            values[key] = "0x" + code[start : start + length].hex()
            break
    return values


@dataclass(frozen=True)
class CodeComparison:
    match: CodeMatch
    chain_tail: MetadataTail | None
    build_tail: MetadataTail | None
    chain_code_bytes: int
    build_code_bytes: int


def compare_runtime_code(
    chain_code: bytes, build_code: bytes, immutable_regions: Iterable[tuple[int, int]]
) -> CodeComparison:
    """How `chain_code` matches `build_code` (see the module docstring)."""
    regions = list(immutable_regions)
    chain_masked = mask_regions(chain_code, regions)
    build_masked = mask_regions(build_code, regions)
    chain_body, chain_tail = split_metadata(chain_masked)
    build_body, build_tail = split_metadata(build_masked)
    if not chain_code:
        match = CodeMatch.NO_CODE
    elif chain_masked == build_masked:
        match = CodeMatch.EXACT
    elif chain_tail is not None and build_tail is not None and chain_body == build_body:
        match = CodeMatch.PARTIAL
    else:
        match = CodeMatch.MISMATCH
    return CodeComparison(match, chain_tail, build_tail, len(chain_code), len(build_code))
