"""node_api.kernel.chain: the chain vocabulary agrees with the contracts.

Compiles contracts/ (from the build cache when unchanged) and checks each Python value
against the ABI (what is public: functions, events, errors, role constants) and against
the Solidity sources (the private `uint8` status constants and the interfaces' documented
value lists), so a renumbering on either side fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import IntEnum

import pytest
from eth_utils.crypto import keccak

from node_api.kernel.chain import (
    LEGAL_AGREEMENT_TRANSITIONS,
    AccessRole,
    AgreementStatus,
    ContractName,
    CycleStatus,
    EntryKind,
    PartnerRole,
)
from oracles.compiler import PROJECT_ROOT, CompiledContracts

CONTRACTS = PROJECT_ROOT / "contracts"
_PRIVATE_UINT8 = re.compile(r"uint8 private constant _(\w+) = (\d+);")
_TRANSITION = re.compile(r"\(8 \* _(\w+) \+ _(\w+)\)")


def _source(path: str) -> str:
    return (CONTRACTS / path).read_text(encoding="utf-8")


def _private_constants(path: str) -> dict[str, int]:
    return {name: int(value) for name, value in _PRIVATE_UINT8.findall(_source(path))}


def _documented_values(path: str, title: str) -> dict[int, str]:
    """`0 None, 1 Proposed, ...` after `title (`uint8`):` in the interface's NatSpec."""
    text = " ".join(line.strip().removeprefix("///").strip() for line in _source(path).splitlines())
    match = re.search(re.escape(title) + r" \(`uint8`\): (.*?)\.", text)
    assert match, f"{path} documents no {title}"
    return {int(value): name for value, name in re.findall(r"(\d+) (\w+)", match.group(1))}


def _abi_items(compiled: CompiledContracts, name: str) -> Iterator[dict[str, object]]:
    yield from compiled.artifact(name).abi


def _input_type(compiled: CompiledContracts, contract: str, item: str, arg: str) -> str:
    for entry in _abi_items(compiled, contract):
        if entry.get("name") == item:
            for parameter in entry["inputs"]:  # type: ignore[attr-defined]
                if parameter["name"] == arg:
                    return str(parameter["type"])
    raise AssertionError(f"{contract}.{item} has no input {arg}")


def test_contract_names_are_the_deployable_artifacts(compiled: CompiledContracts) -> None:
    deployable = {
        name
        for name, artifact in compiled.artifacts.items()
        if artifact.source_unit.startswith("contracts/")
        and not artifact.source_unit.startswith("contracts/interfaces/")
        and artifact.bytecode not in ("", "0x")
    }
    assert deployable == {name.value for name in ContractName}


@pytest.mark.parametrize(
    ("enum", "source", "interface", "title", "skip"),
    [
        (
            CycleStatus,
            "ClearingHouse.sol",
            "interfaces/IClearingHouse.sol",
            "Cycle status",
            {"ROLE_MAX"},
        ),
        (
            AgreementStatus,
            "CreditRegistry.sol",
            "interfaces/ICreditRegistry.sol",
            "Status values",
            set(),
        ),
    ],
    ids=["cycle", "agreement"],
)
def test_statuses_match_the_contract_constants(
    enum: type[IntEnum], source: str, interface: str, title: str, skip: set[str]
) -> None:
    constants = {k: v for k, v in _private_constants(source).items() if k not in skip}
    constants.setdefault("NONE", 0)
    assert constants == {member.name: member.value for member in enum}
    documented = _documented_values(interface, title)
    assert documented == {member.value: member.label for member in enum}  # type: ignore[attr-defined]


def test_status_fields_are_uint8(compiled: CompiledContracts) -> None:
    assert _input_type(compiled, "ClearingHouse", "UnexpectedCycleStatus", "status") == "uint8"
    assert _input_type(compiled, "CreditRegistry", "setStatus", "newStatus") == "uint8"
    assert max(CycleStatus) < 2**8 and max(AgreementStatus) < 2**8


def test_legal_agreement_transitions_match_the_registry_bitmap() -> None:
    names = {member.name: member for member in AgreementStatus}
    bitmap = _source("CreditRegistry.sol").split("_LEGAL_TRANSITIONS =", 1)[1].split(";", 1)[0]
    pairs = {(names[a], names[b]) for a, b in _TRANSITION.findall(bitmap)}
    assert pairs == LEGAL_AGREEMENT_TRANSITIONS


def test_partner_roles_match_the_clearing_house(compiled: CompiledContracts) -> None:
    assert _private_constants("ClearingHouse.sol")["ROLE_MAX"] == max(PartnerRole)
    documented = _documented_values("interfaces/IClearingHouse.sol", "Partner roles")
    assert documented == {role.value: role.name.title() for role in PartnerRole}
    assert _input_type(compiled, "ClearingHouse", "registerPartner", "role") == "uint8"


def test_entry_kinds_fit_the_leaf_kind(compiled: CompiledContracts) -> None:
    assert _input_type(compiled, "ClearingHouse", "verifyEntry", "kind") == "uint8"
    assert all(0 < kind < 2**8 for kind in EntryKind)
    assert sorted(EntryKind) == list(range(1, len(EntryKind) + 1))


def test_access_roles_are_the_abis_role_constants(compiled: CompiledContracts) -> None:
    in_abi = {
        str(entry["name"])
        for name in ContractName
        for entry in _abi_items(compiled, name)
        if entry.get("type") == "function"
        and str(entry.get("name", "")).endswith("_ROLE")
        and not entry["inputs"]
    }
    assert in_abi == {role.value for role in AccessRole}
    assert AccessRole.DEFAULT_ADMIN_ROLE.hash == bytes(32)
    for role in AccessRole:
        if role is not AccessRole.DEFAULT_ADMIN_ROLE:
            assert role.hash == keccak(text=role.value)
