"""Recompile the published sources with the compiler settings the manifest records.

The sources are the project's contracts/ plus the OpenZeppelin files they import from
node_modules, or the `sources` of a standard JSON input file the lender published.
The settings are always the manifest's (the code they claim to have deployed), with
only the output selection widened to what the comparison needs (ABIs, bytecodes,
immutable references, metadata, and the AST to name immutables and to see what each
function can run); output selection changes no byte of the code or of the metadata.

A compile takes several seconds with solcjs, so results are cached on disk under a key
that is the sha256 of the exact input and the compiler package version: an auditor's
own cache, never the node's build folder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from node_api.kernel.errors import ConfigurationError
from oracles.audit.reach import compute_function_reach
from oracles.compiler import (
    CONTRACT_OUTPUTS,
    PROJECT_ROOT,
    CompilerSettings,
    ContractArtifact,
    SolcOutput,
    SourceEntry,
    StandardJsonInput,
    collect_sources,
    compile_standard_input,
    compute_source_hashes,
    extract_artifacts,
    get_solc_npm_version,
)

DEFAULT_CACHE_DIR: Final = PROJECT_ROOT / "build" / "audit"
OUTPUT_SELECTION: Final = {"*": {"": ["ast"], "*": list(CONTRACT_OUTPUTS)}}


class Recompiled(BaseModel):
    """The auditor's build of the published sources."""

    model_config = ConfigDict(frozen=True)

    compiler_version: str
    source_hashes: dict[str, str]
    artifacts: dict[str, ContractArtifact]
    immutable_names: dict[str, dict[str, str]]
    """Per contract: immutable AST id -> `Contract.variable`."""
    function_reach: dict[str, dict[str, list[str]]]
    """Per contract: external/public function -> what it can run (see `reach`)."""


@dataclass(frozen=True)
class SourceSet:
    """Where the sources come from (`origin`, for the report) and their contents."""

    origin: str
    sources: dict[str, SourceEntry]


def load_sources(standard_input_path: Path | None, contracts_dir: Path | None) -> SourceSet:
    """The published sources: from a standard JSON input file, else from contracts/."""
    if standard_input_path is None:
        folder = contracts_dir or PROJECT_ROOT / "contracts"
        return SourceSet(f"{folder} + node_modules", collect_sources(folder))
    try:
        document = json.loads(standard_input_path.read_text(encoding="utf-8"))
        sources = document["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"{standard_input_path} is not a standard JSON input with sources", field="sources"
        ) from None
    if not all(isinstance(item, dict) and "content" in item for item in sources.values()):
        raise ConfigurationError(
            "every source of the standard JSON input needs its content", field="sources"
        )
    return SourceSet(str(standard_input_path), sources)


def build_standard_input(sources: SourceSet, settings: CompilerSettings) -> StandardJsonInput:
    """The compiler input: the sources, the manifest's settings, our output selection."""
    compile_settings = copy.deepcopy(settings)
    compile_settings["outputSelection"] = OUTPUT_SELECTION
    return {"language": "Solidity", "sources": sources.sources, "settings": compile_settings}


def recompile(standard_input: StandardJsonInput, cache_dir: Path | None) -> Recompiled:
    """Compile `standard_input` (or read the cached result of the very same input)."""
    canonical = json.dumps(standard_input, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(f"{get_solc_npm_version()}\n{canonical}".encode()).hexdigest()
    cache_path = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cache_path is not None and cache_path.is_file():
        try:
            return Recompiled.model_validate_json(cache_path.read_bytes())
        except ValueError:
            pass
    output = compile_standard_input(standard_input)
    artifacts = extract_artifacts(output)
    result = Recompiled(
        compiler_version=_get_compiler_version(artifacts),
        source_hashes=compute_source_hashes(standard_input["sources"]),
        artifacts=artifacts,
        immutable_names=_name_immutables(output, artifacts),
        function_reach=compute_function_reach(
            [source.get("ast") for source in output.get("sources", {}).values()], list(artifacts)
        ),
    )
    if cache_path is not None:
        _write_atomically(cache_path, result.model_dump_json().encode("utf-8"))
    return result


def _get_compiler_version(artifacts: dict[str, ContractArtifact]) -> str:
    for artifact in artifacts.values():
        return str(json.loads(artifact.metadata)["compiler"]["version"])
    raise ConfigurationError("the published sources declare no contract", field="sources")


def _collect_declarations(node: Any, names: dict[int, str], contract: str) -> None:
    """AST id -> `Contract.variable` for every variable declared in a contract."""
    if isinstance(node, dict):
        kind = node.get("nodeType")
        if kind == "ContractDefinition":
            contract = str(node.get("name", contract))
        if kind == "VariableDeclaration" and isinstance(node.get("id"), int):
            names[node["id"]] = f"{contract}.{node.get('name', '?')}"
        for value in node.values():
            _collect_declarations(value, names, contract)
    elif isinstance(node, list):
        for item in node:
            _collect_declarations(item, names, contract)


def _name_immutables(
    output: SolcOutput, artifacts: dict[str, ContractArtifact]
) -> dict[str, dict[str, str]]:
    names: dict[int, str] = {}
    for source in output.get("sources", {}).values():
        _collect_declarations(source.get("ast"), names, "")
    return {
        name: {key: names.get(int(key), f"ast#{key}") for key in artifact.immutable_references}
        for name, artifact in artifacts.items()
    }


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as file:
        file.write(content)
    os.replace(file.name, path)
