"""Replay of the NetworkTimelock's events (see `history`).

The timelock (OpenZeppelin's TimelockController) holds the admin and pauser roles of the
governed contracts, so every admin change is an operation: `CallScheduled` announces
the exact call with its delay, `CallExecuted` runs it once the delay has passed,
`Cancelled` withdraws it, `MinDelayChange` moves the minimum delay (only through an
operation of its own). Each becomes an admin action of the report's timeline, with the
target call decoded by the target's published ABI.

Anomalies of `governance.timelock_operations`: a delay below the minimum in force when
it was scheduled, an execution before the operation was ready (when the block times are
known), an execution or cancellation of an operation not pending, a minimum-delay change
from a value that was not the minimum. An execution also marks the governed contract's
admin actions of the same call (same transaction, same target and function, logged
before it) as sent by the timelock: their events carry no sender of their own.
"""

from __future__ import annotations

from dataclasses import replace

from oracles.audit.events import AuditEvent, EventRef
from oracles.audit.replay_state import (
    TIMELOCK_CHECK,
    MinDelayChange,
    ReplayedState,
    TimelockCall,
    TimelockOperation,
)
from oracles.audit.source_verify import decode_function_call

MAX_ARGUMENT_CHARS = 200


def _short(operation_id: str) -> str:
    return operation_id[:10] + "…"


def _argument(state: ReplayedState, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in state.role_names:
        return state.role_name(value)
    if isinstance(value, list):
        return "[" + ", ".join(_argument(state, item) for item in value) + "]"
    text = str(value)
    return text if len(text) <= MAX_ARGUMENT_CHARS else text[:MAX_ARGUMENT_CHARS] + "…"


def describe_call(state: ReplayedState, target: str, data: str) -> tuple[str, str]:
    """(`Contract.function(arguments)`, function name) of a call, decoded with the target's
    published ABI; the raw selector when the target or the function is unknown."""
    name = state.contract_at(target)
    calldata = bytes.fromhex(data[2:]) if data.startswith("0x") else b""
    decoded = decode_function_call(state.abis.get(name, []), calldata) if name else None
    if name is None or decoded is None:
        selector = "0x" + calldata[:4].hex()
        return f"{name or target}: call {selector} ({len(calldata)} bytes)", ""
    arguments = ", ".join(_argument(state, value) for value in decoded.args.values())
    return f"{name}.{decoded.function}({arguments})", decoded.function


def schedule_call(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    operation_id, delay_s = str(args["id"]), int(args["delay"])
    target, data = str(args["target"]), str(args["data"])
    description, function = describe_call(state, target, data)
    call = TimelockCall(int(args["index"]), target, int(args["value"]), data, description, function)
    operation = state.timelock_operation(operation_id)
    if operation is not None and operation.state == "pending" and operation.scheduled is not None:
        if operation.scheduled.tx == event.ref.tx:  # the next call of a batch
            operation.calls.append(call)
            return
        state.note(TIMELOCK_CHECK, f"operation {operation_id} scheduled while pending", event)
    elif operation is not None and operation.state == "executed":
        state.note(
            TIMELOCK_CHECK, f"operation {operation_id} scheduled again after execution", event
        )
    minimum = state.timelock_min_delay_s
    state.timelock_operations.append(
        TimelockOperation(
            operation_id=operation_id,
            calls=[call],
            predecessor=str(args["predecessor"]),
            delay_s=delay_s,
            scheduled=event.ref,
            scheduled_at=event.timestamp,
            min_delay_s=minimum,
        )
    )
    if minimum is not None and delay_s < minimum:
        state.note(
            TIMELOCK_CHECK,
            f"operation {operation_id} ({description}) scheduled with a delay of {delay_s} s, "
            f"below the minimum delay of {minimum} s",
            event,
            delay_s=delay_s,
            min_delay_s=minimum,
        )
    minimum_text = f", minimum {minimum} s" if minimum is not None else ""
    state.admin(
        event,
        "timelock",
        f"scheduled {description} as operation {_short(operation_id)}, "
        f"delay {delay_s} s{minimum_text}",
        function="schedule",
        operation=operation_id,
    )


def _unknown_operation(state: ReplayedState, event: AuditEvent, operation_id: str) -> None:
    """An operation first seen executed or cancelled: scheduled before a partial window
    (kept, unjudged), else an anomaly."""
    if not state.partial:
        state.note(TIMELOCK_CHECK, f"operation {operation_id} was never scheduled", event)
    state.timelock_operations.append(
        TimelockOperation(operation_id, [], "", 0, None, None, state.timelock_min_delay_s)
    )


def execute_call(state: ReplayedState, event: AuditEvent) -> None:
    args = event.args
    operation_id, index = str(args["id"]), int(args["index"])
    target, data = str(args["target"]), str(args["data"])
    description, function = describe_call(state, target, data)
    operation = state.timelock_operation(operation_id)
    if operation is None:
        _unknown_operation(state, event, operation_id)
        operation = state.timelock_operations[-1]
    elif operation.state != "pending" and not _same_batch(operation.executed, event):
        state.note(
            TIMELOCK_CHECK, f"operation {operation_id} executed while {operation.state}", event
        )
    ready_at, executed_at = operation.ready_at, event.timestamp
    if ready_at is not None and executed_at is not None and executed_at < ready_at:
        state.note(
            TIMELOCK_CHECK,
            f"operation {operation_id} ({description}) executed at {executed_at}, "
            f"before it was ready at {ready_at}",
            event,
        )
    call = next((c for c in operation.calls if c.index == index), None)
    if call is None:
        call = TimelockCall(index, target, int(args["value"]), data, description, function)
        operation.calls.append(call)
        if operation.scheduled is not None:
            state.note(TIMELOCK_CHECK, f"operation {operation_id} ran an unscheduled call", event)
    elif (call.target.lower(), call.data.lower()) != (target.lower(), data.lower()):
        state.note(TIMELOCK_CHECK, f"operation {operation_id} ran another call", event)
    call.executed = event.ref
    operation.executed, operation.executed_at = event.ref, executed_at
    _attribute_to_timelock(state, event, target, function, operation_id)
    state.admin(
        event,
        "timelock",
        f"executed {description} (operation {_short(operation_id)})",
        function="execute",
        operation=operation_id,
    )


def _same_batch(executed: EventRef | None, event: AuditEvent) -> bool:
    """Whether `event` is a later call of a batch whose execution began at `executed`."""
    return executed is not None and executed.tx == event.ref.tx


def _attribute_to_timelock(
    state: ReplayedState, event: AuditEvent, target: str, function: str, operation_id: str
) -> None:
    """The admin actions this execution made: same transaction, logged before it, on the
    target, from the called function, with no sender of their own yet."""
    for position in range(len(state.admin_actions) - 1, -1, -1):
        action = state.admin_actions[position]
        if action.ref.tx != event.ref.tx:
            break  # actions are in chain order: the rest are from earlier transactions
        if action.operation or action.ref.order >= event.ref.order:
            continue
        if action.address.lower() == target.lower() and action.function == function:
            sender = action.sender or event.address
            state.admin_actions[position] = replace(action, sender=sender, operation=operation_id)


def cancel_operation(state: ReplayedState, event: AuditEvent) -> None:
    operation_id = str(event.args["id"])
    operation = state.timelock_operation(operation_id)
    if operation is None:
        _unknown_operation(state, event, operation_id)
        operation = state.timelock_operations[-1]
    elif operation.state != "pending":
        state.note(
            TIMELOCK_CHECK, f"operation {operation_id} cancelled while {operation.state}", event
        )
    operation.cancelled = event.ref
    what = "; ".join(call.description for call in operation.calls) or "an earlier operation"
    state.admin(
        event,
        "timelock",
        f"cancelled operation {_short(operation_id)}: {what}",
        function="cancel",
        operation=operation_id,
    )


def change_min_delay(state: ReplayedState, event: AuditEvent) -> None:
    old_s, new_s = int(event.args["oldDuration"]), int(event.args["newDuration"])
    current = state.timelock_min_delay_s
    if current is not None and old_s != current:
        state.note(
            TIMELOCK_CHECK, f"minimum delay changed from {old_s} s, but it was {current} s", event
        )
    state.min_delay_changes.append(MinDelayChange(old_s, new_s, event.ref))
    state.timelock_min_delay_s = new_s
    state.admin(event, "timelock", f"minimum delay {old_s} s -> {new_s} s", function="updateDelay")


def salt_operation(state: ReplayedState, event: AuditEvent) -> None:
    operation = state.timelock_operation(str(event.args["id"]))
    if operation is not None:
        operation.salt = str(event.args["salt"])
