"""Build the Solidity contracts into artifacts, reproducibly and with a cache.

The compiler is npm `solc` (solcjs) behind `solc_shim.cjs`, driven through
py-solc-x's standard-JSON interface. The standard JSON input is self-contained:
every source, the project's and the OpenZeppelin files they import, is carried
with its content, so an auditor can recompile it anywhere with
`compile_standard_input` and compare bytecode and metadata. Artifacts are cached
under build/contracts/, keyed by the hash of that input, so an unchanged tree
never runs the compiler twice.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NotRequired, cast

import solcx
from pydantic import BaseModel, ConfigDict, with_config
from solcx.exceptions import SolcError
from typing_extensions import TypedDict

from node_api.kernel.errors import ConfigurationError, ContractBuildError

logger = logging.getLogger(__name__)

NPM_TOOLS_MISSING: Final = "npm tools missing: run `make setup`"
CONTRACTS_PREFIX: Final = "contracts/"

# The compiler's JSON, typed for what we read. `extra="allow"` keeps every other key and
# the keys are declared in solc's (alphabetical) order, so the recorded input and the cached
# artifacts round-trip byte for byte. (typing_extensions' TypedDict: pydantic needs it
# before Python 3.12.)


@with_config(ConfigDict(extra="allow"))
class AbiParameter(TypedDict):
    """One input, output or component of an ABI entry."""

    components: NotRequired[list[AbiParameter]]
    indexed: NotRequired[bool]
    internalType: NotRequired[str]
    name: str
    type: str


@with_config(ConfigDict(extra="allow"))
class AbiEntry(TypedDict):
    """One entry of a contract's ABI: a function, event, error or constructor."""

    anonymous: NotRequired[bool]
    inputs: NotRequired[list[AbiParameter]]
    name: NotRequired[str]
    outputs: NotRequired[list[AbiParameter]]
    stateMutability: NotRequired[str]
    type: str


class SourceEntry(TypedDict):
    """A source of the standard JSON input, by content."""

    content: str


@with_config(ConfigDict(extra="allow"))
class CompilerSettings(TypedDict, total=False):
    """The standard JSON input's `settings` (a published input may leave any out)."""

    optimizer: dict[str, bool | int]
    evmVersion: str
    metadata: dict[str, str]
    outputSelection: dict[str, dict[str, list[str]]]


@with_config(ConfigDict(extra="allow"))
class StandardJsonInput(TypedDict):
    """solc's standard JSON input."""

    language: str
    sources: dict[str, SourceEntry]
    settings: CompilerSettings


class SolcBytecode(TypedDict, total=False):
    """`evm.bytecode` / `evm.deployedBytecode` of one contract in solc's output."""

    object: str
    immutableReferences: dict[str, list[dict[str, int]]]


class SolcEvm(TypedDict):
    bytecode: SolcBytecode
    deployedBytecode: SolcBytecode


class SolcContract(TypedDict):
    """One contract in solc's standard JSON output (the selected outputs)."""

    abi: list[AbiEntry]
    evm: SolcEvm
    metadata: str


class SolcSource(TypedDict, total=False):
    """One source unit in solc's output: its id and, when selected, its AST."""

    id: int
    ast: object


class SolcOutput(TypedDict, total=False):
    """solc's standard JSON output: contracts by source unit, then by name."""

    contracts: dict[str, dict[str, SolcContract]]
    errors: list[dict[str, str]]
    sources: dict[str, SolcSource]


CONTRACT_OUTPUTS: Final = (
    "abi",
    "evm.bytecode.object",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.immutableReferences",
    "metadata",
)
"""What solc outputs per contract (`outputSelection`), for the artifacts."""

COMPILER_SETTINGS: Final[CompilerSettings] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {"*": {"*": list(CONTRACT_OUTPUTS)}},
}


def _find_project_root() -> Path:
    """The folder holding package.json above this module (else above the working dir)."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "package.json").is_file():
                return folder
    return Path(__file__).resolve().parent.parent


PROJECT_ROOT: Final = _find_project_root()
NODE_MODULES: Final = Path(
    os.environ.get("CREDITNET_NODE_MODULES", str(PROJECT_ROOT / "node_modules"))
)
"""The npm tools (solc, anvil, OpenZeppelin); overridable to share one install."""
SHIM_PATH: Final = Path(__file__).resolve().with_name("solc_shim.cjs")


class ImmutableReference(BaseModel):
    """A region of deployed bytecode the constructor fills with an immutable value."""

    model_config = ConfigDict(frozen=True)

    start: int
    length: int


class ContractArtifact(BaseModel):
    """One compiled contract. Bytecodes are 0x-prefixed hex; `metadata` is the
    compiler's metadata JSON exactly as emitted (its IPFS hash ends the bytecode)."""

    model_config = ConfigDict(frozen=True)

    name: str
    source_unit: str
    abi: list[AbiEntry]
    bytecode: str
    deployed_bytecode: str
    metadata: str
    immutable_references: dict[str, list[ImmutableReference]]


class CompiledContracts(BaseModel):
    """A whole build: what was compiled, how, and the artifacts of contracts/."""

    model_config = ConfigDict(frozen=True)

    input_hash: str
    compiler_version: str
    settings: CompilerSettings
    source_hashes: dict[str, str]
    standard_json_input: StandardJsonInput
    artifacts: dict[str, ContractArtifact]

    def artifact(self, name: str) -> ContractArtifact:
        """The artifact named `name`, or ConfigurationError naming what exists."""
        try:
            return self.artifacts[name]
        except KeyError:
            known = ", ".join(sorted(self.artifacts)) or "none"
            raise ConfigurationError(
                f"no compiled contract named {name} (built: {known})", field="contract"
            ) from None


def get_solc_npm_version() -> str:
    """The version of the npm `solc` package, or the npm-tools ConfigurationError."""
    package_json = NODE_MODULES / "solc" / "package.json"
    if not package_json.is_file():
        raise ConfigurationError(NPM_TOOLS_MISSING)
    version = json.loads(package_json.read_text(encoding="utf-8"))["version"]
    return str(version)


def compile_contracts(
    contracts_dir: Path | None = None,
    build_dir: Path | None = None,
    *,
    solc_binary: Path | None = None,
) -> CompiledContracts:
    """Compile every .sol under `contracts_dir` (default contracts/), from cache if possible.

    Source unit names are `contracts/<path>`; imports of `@openzeppelin/...` come from
    node_modules. `solc_binary` replaces the shim (tests use it to count compiler runs).
    Raises ContractBuildError with `file:line:col: Type: message` lines on errors.
    """
    contracts_dir = (contracts_dir or PROJECT_ROOT / "contracts").resolve()
    build_dir = build_dir or PROJECT_ROOT / "build" / "contracts"
    solc_version = get_solc_npm_version()
    sources = collect_sources(contracts_dir)
    settings = copy.deepcopy(COMPILER_SETTINGS)
    standard_input: StandardJsonInput = {
        "language": "Solidity",
        "sources": sources,
        "settings": settings,
    }
    input_hash = compute_input_hash(standard_input, solc_version)
    cache_path = build_dir / f"{input_hash}.json"
    cached = _read_cache(cache_path)
    if cached is not None:
        return cached
    with _build_lock(build_dir):
        # Another process may have built the same input while we waited for the lock.
        cached = _read_cache(cache_path)
        if cached is not None:
            return cached
        started = time.perf_counter()
        compiled = _build(standard_input, input_hash, solc_binary)
        _write_cache(cache_path, compiled)
    elapsed_ms = round(1000 * (time.perf_counter() - started))
    logger.info("contracts compiled", extra={"input_hash": input_hash, "elapsed_ms": elapsed_ms})
    return compiled


def _build(
    standard_input: StandardJsonInput, input_hash: str, solc_binary: Path | None
) -> CompiledContracts:
    """Run the compiler on a self-contained input and collect the build record."""
    output = _run_compiler(standard_input, solc_binary=solc_binary)
    artifacts = extract_artifacts(output)
    return CompiledContracts(
        input_hash=input_hash,
        compiler_version=_get_compiler_version(artifacts),
        settings=standard_input["settings"],
        source_hashes=compute_source_hashes(standard_input["sources"]),
        standard_json_input=standard_input,
        artifacts=artifacts,
    )


@contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """An exclusive lock on the build folder, so parallel workers compile an input once."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def compile_standard_input(standard_input: StandardJsonInput) -> SolcOutput:
    """Compile a published standard JSON input as is (the auditor's recompile).

    The input must be self-contained: the compiler may read no file, so a source
    missing from it is a compile error, never silently taken from the local tree.
    """
    get_solc_npm_version()
    return _run_compiler(standard_input, solc_binary=None)


def compute_input_hash(standard_input: StandardJsonInput, solc_version: str) -> str:
    """sha256 of the canonical standard JSON input and the npm compiler version."""
    canonical = json.dumps(standard_input, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{solc_version}\n{canonical}".encode()).hexdigest()


def compute_source_hashes(sources: dict[str, SourceEntry]) -> dict[str, str]:
    """sha256 (hex) of each source's content, by source unit name."""
    return {
        unit: hashlib.sha256(source["content"].encode("utf-8")).hexdigest()
        for unit, source in sorted(sources.items())
    }


# A Solidity token stream just precise enough to find import directives: comments
# and string literals are tokens of their own, so `import` inside them is ignored.
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<string>(?:unicode|hex)?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
    | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<other>.)
    """,
    re.DOTALL | re.VERBOSE,
)


def compute_import_paths(source: str) -> list[str]:
    """The import paths of a Solidity source, in order (`import ... "path" ...;`)."""
    paths: list[str] = []
    in_import = False
    for match in _TOKEN.finditer(source):
        kind, text = match.lastgroup, match.group()
        if kind in ("space", "comment"):
            continue
        if kind == "word" and text == "import":
            in_import = True
        elif in_import and kind == "string":
            paths.append(text[1:-1])
            in_import = False
        elif in_import and text == ";":
            in_import = False
    return paths


def compute_source_unit_name(importer: str, import_path: str) -> str:
    """The source unit name an import refers to (relative ones resolve against the importer)."""
    if import_path.startswith(("./", "../")):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), import_path))
    return import_path


def collect_sources(contracts_dir: Path) -> dict[str, SourceEntry]:
    """Every .sol under `contracts_dir` plus, transitively, every file they import.

    An import that cannot be found is left out: the compiler then reports it with
    file and line.
    """
    if not contracts_dir.is_dir():
        raise ConfigurationError(
            f"contracts folder {contracts_dir} not found", field="contracts_dir"
        )
    pending = [
        CONTRACTS_PREFIX + path.relative_to(contracts_dir).as_posix()
        for path in sorted(contracts_dir.rglob("*.sol"))
    ]
    if not pending:
        raise ContractBuildError(f"no Solidity sources under {contracts_dir}")
    sources: dict[str, SourceEntry] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        file = _locate_source(unit, contracts_dir)
        if file is None:
            continue
        content = file.read_bytes().decode("utf-8")
        sources[unit] = {"content": content}
        pending.extend(
            compute_source_unit_name(unit, path) for path in compute_import_paths(content)
        )
    return dict(sorted(sources.items()))


def _locate_source(unit: str, contracts_dir: Path) -> Path | None:
    """The file behind a source unit name: contracts/ maps to `contracts_dir`, the rest
    to node_modules. Names leading outside those folders are not found."""
    if unit.startswith(CONTRACTS_PREFIX):
        root, relative = contracts_dir, unit[len(CONTRACTS_PREFIX) :]
    else:
        root, relative = NODE_MODULES, unit
    if posixpath.isabs(relative):
        return None
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _run_compiler(standard_input: StandardJsonInput, *, solc_binary: Path | None) -> SolcOutput:
    """One compiler run through py-solc-x; compiler errors become ContractBuildError.

    The base path is an empty folder and nothing else is allowed, so the compiler
    reads no file: what it compiles is exactly the input, which is what we record.
    """
    if shutil.which("node") is None:
        raise ConfigurationError("node is missing: install Node.js 20 and run `make setup`")
    with tempfile.TemporaryDirectory(prefix="creditnet-solc-") as empty_dir:
        try:
            output = cast(
                SolcOutput,
                solcx.compile_standard(
                    dict(standard_input), base_path=empty_dir, solc_binary=solc_binary or SHIM_PATH
                ),
            )
        except SolcError as error:
            raise ContractBuildError(format_compiler_errors(error)) from None
    return output


_LOCATION = re.compile(r"-->\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+):")


def format_compiler_errors(error: SolcError) -> str:
    """One `file:line:col: Type: message` line per compiler error (what an editor jumps to)."""
    entries = [entry for entry in (error.error_dict or []) if entry.get("severity") == "error"]
    if not entries:
        stderr = (error.stderr_data or "").strip().splitlines()
        reason = stderr[-1] if stderr else error.message
        return f"compiler failed (exit {error.return_code}): {reason}"
    lines = []
    for entry in entries:
        headline = f"{entry.get('type', 'Error')}: {entry.get('message', '').strip()}"
        location = _LOCATION.search(entry.get("formattedMessage", ""))
        if location is not None:
            where = f"{location['file']}:{location['line']}:{location['column']}"
            headline = f"{where}: {headline}"
        lines.append(headline)
    return "\n".join(lines)


def extract_artifacts(output: SolcOutput) -> dict[str, ContractArtifact]:
    """The artifacts of the contracts declared under contracts/, by contract name."""
    artifacts: dict[str, ContractArtifact] = {}
    for unit, contracts in sorted(output.get("contracts", {}).items()):
        if not unit.startswith(CONTRACTS_PREFIX):
            continue
        for name, data in sorted(contracts.items()):
            if name in artifacts:
                raise ContractBuildError(
                    f"{unit}: contract name {name} also declared in {artifacts[name].source_unit}"
                )
            deployed = data["evm"]["deployedBytecode"]
            artifacts[name] = ContractArtifact(
                name=name,
                source_unit=unit,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + deployed["object"],
                metadata=data["metadata"],
                immutable_references=deployed.get("immutableReferences", {}),
            )
    return artifacts


def _get_compiler_version(artifacts: dict[str, ContractArtifact]) -> str:
    """The full compiler version (with commit) as recorded in the contracts' metadata."""
    for artifact in artifacts.values():
        return str(json.loads(artifact.metadata)["compiler"]["version"])
    return solcx.wrapper.get_version_str_from_solc_binary(SHIM_PATH)


def _read_cache(path: Path) -> CompiledContracts | None:
    """The cached build at `path`, or None when absent or unreadable."""
    try:
        return CompiledContracts.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, compiled: CompiledContracts) -> None:
    """Write atomically, so concurrent test workers never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as file:
        file.write(compiled.model_dump_json().encode("utf-8"))
    os.replace(file.name, path)
