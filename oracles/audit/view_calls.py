"""View calls at the audited block and the field-by-field comparison they feed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.events import EventRef
from oracles.tx_sender import RpcFailure

CallSpec = tuple[str, str, list[Any]]
"""(contract name, function name, arguments)."""

Fields = Mapping[str, JsonValue]
"""A subject's fields by name, as replayed from the events or as a view returns them."""


SimpleComparison = tuple[
    str, CallSpec, Callable[[tuple[Any, ...]], Fields], Fields, "EventRef | None"
]
"""(subject, the view call, view output -> fields, the replayed fields, where the
replayed value comes from)."""


def run_views(
    reader: ChainReader,
    contracts: AuditedContracts,
    calls: Sequence[CallSpec],
    block: int | None = None,
) -> list[tuple[Any, ...] | None]:
    """Call each (contract, function, args) at the audited block (or `block`); None for a
    failed call."""
    encoded = []
    for contract, function, args in calls:
        codec = contracts.codecs[contract].function(function)
        encoded.append((contracts.addresses[contract], codec.encode(args)))
    results = reader.call_many(encoded, block)
    outputs: list[tuple[Any, ...] | None] = []
    for (contract, function, _args), result in zip(calls, results, strict=True):
        if isinstance(result, RpcFailure):
            outputs.append(None)
            continue
        try:
            outputs.append(contracts.codecs[contract].function(function).decode_output(result))
        except Exception:  # an undecodable answer is a failed comparison, not a crash
            outputs.append(None)
    return outputs


def hex_of(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def diff_fields(mine: Fields, theirs: Fields) -> dict[str, Fields]:
    """Fields that differ: {field: {"replayed": x, "view": y}}."""
    return {
        key: {"replayed": mine[key], "view": theirs.get(key)}
        for key in mine
        if mine[key] != theirs.get(key)
    }


def mismatch_evidence(
    ref: EventRef | None, address: str, subject: str, diff: Mapping[str, Fields]
) -> Evidence:
    fields = ", ".join(
        f"{key}: events {v['replayed']} vs view {v['view']}" for key, v in diff.items()
    )
    return Evidence(
        ref.block if ref else None,
        ref.tx if ref else None,
        address,
        {"subject": subject, "problem": f"{subject}: {fields}", "differences": diff},
    )


def view_failed_evidence(address: str, subject: str) -> Evidence:
    return Evidence(
        address=address, values={"subject": subject, "problem": f"{subject}: view call failed"}
    )


def compare_simple(
    check_id: str,
    title: str,
    reader: ChainReader,
    contracts: AuditedContracts,
    items: Sequence[SimpleComparison],
    ok_message: str,
) -> CheckResult:
    """A check comparing one view call per item: (subject, call, view -> fields, replayed
    fields, where the replayed value comes from)."""
    failures: list[Evidence] = []
    present = [item for item in items if contracts.has(item[1][0])]
    outputs = run_views(reader, contracts, [item[1] for item in present])
    for (subject, call, convert, mine, ref), output in zip(present, outputs, strict=True):
        address = contracts.addresses[call[0]]
        if output is None:
            failures.append(view_failed_evidence(address, subject))
            continue
        diff = diff_fields(mine, convert(output))
        if diff:
            failures.append(mismatch_evidence(ref, address, subject, diff))
    return make_check(
        check_id,
        title,
        failures,
        ok_message=ok_message,
        fail_message="{count} differences; first: {first}",
    )
