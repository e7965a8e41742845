"""Runtime code comparison as Sourcify defines matches: exact, partial, mismatch."""

from __future__ import annotations

from oracles.audit.bytecode import (
    CodeMatch,
    compare_runtime_code,
    encode_base58,
    mask_regions,
    read_immutables,
    split_metadata,
)
from oracles.compiler import CompiledContracts


def _house(compiled: CompiledContracts) -> tuple[bytes, list[tuple[int, int]]]:
    artifact = compiled.artifact("ClearingHouse")
    regions = [(r.start, r.length) for refs in artifact.immutable_references.values() for r in refs]
    return bytes.fromhex(artifact.deployed_bytecode[2:]), regions


def _flip(code: bytes, offset: int) -> bytes:
    return code[:offset] + bytes([code[offset] ^ 0xFF]) + code[offset + 1 :]


def test_metadata_tail_decodes_to_the_ipfs_hash_and_compiler(compiled: CompiledContracts) -> None:
    code, _regions = _house(compiled)
    body, tail = split_metadata(code)
    assert tail is not None and body + tail.raw == code
    assert tail.compiler_version == "0.8.30"
    assert tail.ipfs_cid is not None and tail.ipfs_cid.startswith("Qm") and len(tail.ipfs_cid) == 46


def test_same_code_with_other_immutable_values_is_an_exact_match(
    compiled: CompiledContracts,
) -> None:
    code, regions = _house(compiled)
    start, length = regions[0]
    filled = code[:start] + b"\x42" * length + code[start + length :]
    assert compare_runtime_code(filled, code, regions).match == CodeMatch.EXACT
    assert read_immutables(filled, {"quorum": [regions[0]]}) == {"quorum": "0x" + "42" * length}


def test_other_metadata_hash_is_a_partial_match(compiled: CompiledContracts) -> None:
    code, regions = _house(compiled)
    _body, tail = split_metadata(code)
    assert tail is not None
    other = _flip(code, len(code) - len(tail.raw) + 10)
    comparison = compare_runtime_code(other, code, regions)
    assert comparison.match == CodeMatch.PARTIAL
    assert comparison.chain_tail is not None and comparison.build_tail is not None
    assert comparison.chain_tail.ipfs_cid != comparison.build_tail.ipfs_cid


def test_one_changed_instruction_is_a_mismatch(compiled: CompiledContracts) -> None:
    code, regions = _house(compiled)
    assert compare_runtime_code(_flip(code, 100), code, regions).match == CodeMatch.MISMATCH
    assert compare_runtime_code(code[:-1], code, regions).match == CodeMatch.MISMATCH


def test_empty_code_is_no_code(compiled: CompiledContracts) -> None:
    code, regions = _house(compiled)
    assert compare_runtime_code(b"", code, regions).match == CodeMatch.NO_CODE


def test_code_without_a_valid_tail_has_no_metadata() -> None:
    assert split_metadata(b"\x60\x80\x00\x05") == (b"\x60\x80\x00\x05", None)
    assert split_metadata(b"") == (b"", None)


def test_masking_clips_regions_past_the_end() -> None:
    assert mask_regions(b"\x01\x02\x03", [(1, 5)]) == b"\x01\x00\x00"


def test_base58_matches_the_bitcoin_alphabet_vectors() -> None:
    assert encode_base58(b"hello world") == "StV1DL6CwTryKyV"
    assert encode_base58(b"\x00\x00\x01") == "112"
