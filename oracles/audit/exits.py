"""`source.exits_never_paused`: no pause can stop a member's way out.

The rule: while any pause is in force, no `claim`, `refund`, `declareDefault` or
`dispute` is refused. The audit sees only mined transactions, never a refused one, so
it checks the rule where it is decided: in the verified source. From the compiler's AST
of the published sources (`reach`), none of the four ClearingHouse functions may reach
a pause gate (`whenNotPaused`, `_requireNotPaused`, `paused`, `whenPaused`,
`_requirePaused`) through its modifiers or any internal call; each must exist in the
ABI. This proves something about the chain only for the code that is deployed: when the
deployed ClearingHouse is not the published source, `source.ClearingHouse` fails and
this check's message says that it judged the published source only (one tampering,
one failed check).

Simulating the calls (`eth_call` of a claim from a payout address on a paused fork) is
out of scope: it needs a fork and a claimable position at hand. Not covered either: a
settlement token that can itself be paused (the dev SettlementToken can, by its own
admin) stops the tokens' transfer, hence claims and refunds; the evidence says whether
the audited token's `transfer` reaches a pause gate.
"""

from __future__ import annotations

from typing import Final

from node_api.kernel.chain import ContractName
from oracles.audit.bytecode import CodeMatch
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.recompile import Recompiled
from oracles.audit.source_verify import DeploymentFacts

CHECK_ID: Final = "source.exits_never_paused"
EXITS: Final = ("claim", "refund", "declareDefault", "dispute")
PAUSE_GATES: Final = frozenset(
    {"whenNotPaused", "_requireNotPaused", "paused", "whenPaused", "_requirePaused"}
)


def find_pause_gates(reach: dict[str, list[str]], function: str) -> list[str] | None:
    """The pause gates `function` can reach (None when there is no such function)."""
    reached = reach.get(function)
    return None if reached is None else sorted(PAUSE_GATES.intersection(reached))


def check_exits(
    recompiled: Recompiled, facts: DeploymentFacts, *, accept_partial: bool
) -> CheckResult:
    """The `source.exits_never_paused` check (see the module)."""
    title = "Claims, refunds, defaults and disputes cannot be paused (verified source)"
    name = ContractName.CLEARING_HOUSE
    verification = next((v for v in facts.verifications if v.name == name), None)
    if verification is None:
        return make_check(
            CHECK_ID, title, [], ok_message="no ClearingHouse in the deployment", fail_message=""
        )
    reach = recompiled.function_reach.get(name, {})
    where = (verification.deploy_block, verification.deploy_tx, verification.address)
    failures: list[Evidence] = []
    accepted = {CodeMatch.EXACT, CodeMatch.PARTIAL} if accept_partial else {CodeMatch.EXACT}
    verified = verification.match in accepted
    context: list[Evidence] = []
    for function in EXITS:
        gates = find_pause_gates(reach, function)
        values: dict[str, JsonValue] = {"function": function, "reaches": reach.get(function)}
        if gates is None:
            values["problem"] = f"{name} has no public {function}: that exit does not exist"
        elif gates:
            values["problem"] = (
                f"{name}.{function} reaches {', '.join(gates)}: a pause would stop it"
            )
            values["pause_gates"] = gates
        (failures if "problem" in values else context).append(Evidence(*where, values))
    token_gates = find_pause_gates(
        recompiled.function_reach.get(ContractName.SETTLEMENT_TOKEN, {}), "transfer"
    )
    if token_gates and any(v.name == ContractName.SETTLEMENT_TOKEN for v in facts.verifications):
        context.append(
            Evidence(
                values={
                    "note": "the settlement token's own transfer can be paused (by the "
                    "token's pauser), which would stop claims and refunds",
                    "token_pause_gates": token_gates,
                }
            )
        )
    return make_check(
        CHECK_ID,
        title,
        failures,
        ok_message=f"{', '.join(EXITS)}: none reaches a pause gate in the "
        + (
            "verified source"
            if verified
            else f"published source, which is not the deployed code (see source.{name})"
        ),
        fail_message="{count} exits a pause could stop; first: {first}",
        context=context,
    )
