"""What each public function of a contract can run: a walk of the compiler's AST.

For every contract, every external or public function (the most derived definition of
each name along the contract's linearization) is mapped to the names of every function
and modifier it can reach: its modifiers, the functions and modifiers its body and
theirs refer to, transitively. An internal call of a virtual function reaches every
definition of that name along the linearization (an over-approximation: the overriding
one is among them). Calls to other contracts reach only the declaration named (an
interface function has no body to follow).

`source_verify`-style checks use it on the verified source: `exits` asks whether a
pause gate (`whenNotPaused`, `_requireNotPaused`, `paused`) is reachable from an exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_DEFINITIONS = ("FunctionDefinition", "ModifierDefinition")
_ENTRY_VISIBILITY = ("external", "public")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict node under `node` (itself included), depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


class _Index:
    """The definitions of a compilation: id -> node, id -> owning contract id."""

    def __init__(self, asts: list[Any]) -> None:
        self.definitions: dict[int, dict[str, Any]] = {}
        self.owner: dict[int, int] = {}
        self.contracts: dict[str, dict[str, Any]] = {}
        for ast in asts:
            for node in _walk(ast):
                if node.get("nodeType") != "ContractDefinition":
                    continue
                self.contracts.setdefault(str(node.get("name")), node)
                for member in node.get("nodes", []):
                    if isinstance(member, dict) and member.get("nodeType") in _DEFINITIONS:
                        self.definitions[int(member["id"])] = member
                        self.owner[int(member["id"])] = int(node["id"])

    def by_name(self, linearization: list[int]) -> dict[str, list[int]]:
        """Definition name -> ids along `linearization` (most derived first)."""
        names: dict[str, list[int]] = {}
        order = {contract_id: rank for rank, contract_id in enumerate(linearization)}
        for definition_id, node in self.definitions.items():
            if self.owner[definition_id] in order:
                names.setdefault(str(node.get("name", "")), []).append(definition_id)
        for ids in names.values():
            ids.sort(key=lambda i: order[self.owner[i]])
        return names


def _referenced(node: dict[str, Any]) -> set[int]:
    found = set()
    for item in _walk({"modifiers": node.get("modifiers", []), "body": node.get("body")}):
        reference = item.get("referencedDeclaration")
        if isinstance(reference, int):
            found.add(reference)
    return found


def _reach(
    index: _Index, start: int, names: dict[str, list[int]], linearized: set[int]
) -> set[str]:
    reached: set[str] = set()
    seen = {start}
    pending = [start]
    while pending:
        node = index.definitions[pending.pop()]
        for reference in _referenced(node):
            target = index.definitions.get(reference)
            if target is None:
                continue
            name = str(target.get("name", ""))
            reached.add(name)
            internal = index.owner[reference] in linearized
            for candidate in names.get(name, [reference]) if internal else [reference]:
                if candidate not in seen:
                    seen.add(candidate)
                    pending.append(candidate)
    return reached


def compute_function_reach(
    asts: list[Any], contract_names: list[str]
) -> dict[str, dict[str, list[str]]]:
    """Contract -> external/public function -> sorted names of what it can run."""
    index = _Index(asts)
    result: dict[str, dict[str, list[str]]] = {}
    for contract_name in contract_names:
        contract = index.contracts.get(contract_name)
        if contract is None:
            continue
        linearization = [int(i) for i in contract.get("linearizedBaseContracts", [])]
        names = index.by_name(linearization)
        functions: dict[str, list[str]] = {}
        for name, ids in names.items():
            entry = index.definitions[ids[0]]
            is_function = entry.get("nodeType") == "FunctionDefinition"
            if not is_function or entry.get("kind") != "function":
                continue
            if entry.get("visibility") not in _ENTRY_VISIBILITY:
                continue
            owner = index.owner[ids[0]]
            reached: set[str] = set()
            for definition_id in ids:
                if index.owner[definition_id] == owner:
                    reached |= _reach(index, definition_id, names, set(linearization))
            functions[name] = sorted(reached)
        result[contract_name] = functions
    return result
