"""The solc shim and the contract build: clean CLI surface, imports, cache, errors."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from solcx.wrapper import get_solc_version

from node_api.kernel.errors import ConfigurationError, ContractBuildError
from oracles import compiler
from oracles.compiler import (
    NODE_MODULES,
    SHIM_PATH,
    compile_contracts,
    compile_standard_input,
    compute_import_paths,
    compute_source_unit_name,
    get_solc_npm_version,
)
from tests.unit.oracles.counter import COUNTER_SOURCE, write_contracts

OZ_ERC20 = "@openzeppelin/contracts/token/ERC20/ERC20.sol"
STRAY_LINE = ">>> Cannot retry compilation with SMT because there are no SMT solvers available."

TOKEN_SOURCE = f"""// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {{ERC20}} from "{OZ_ERC20}";
import {{ICounter}} from "./interfaces/ICounter.sol";

contract Token is ERC20 {{
    address public immutable issuer;

    constructor(address issuer_) ERC20("Test Fen", "TFEN") {{
        issuer = issuer_;
    }}
}}
"""

ICOUNTER_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface ICounter {
    function count() external view returns (uint256);
}
"""


def run_shim(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [str(SHIM_PATH), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def standard_input(sources: dict[str, str]) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
        }
    )


def error_messages(output: dict[str, Any]) -> list[str]:
    return [e["message"] for e in output.get("errors", []) if e["severity"] == "error"]


def import_source(path: str) -> str:
    return f'// SPDX-License-Identifier: MIT\npragma solidity 0.8.30;\nimport "{path}";\n'


@pytest.fixture(scope="module")
def token_build(tmp_path_factory: pytest.TempPathFactory) -> compiler.CompiledContracts:
    """A contract importing OpenZeppelin, compiled cold into a fresh cache."""
    contracts_dir = write_contracts(
        tmp_path_factory.mktemp("token"),
        {"Token.sol": TOKEN_SOURCE, "interfaces/ICounter.sol": ICOUNTER_SOURCE},
    )
    return compile_contracts(contracts_dir, tmp_path_factory.mktemp("token-build"))


def test_shim_version_reads_like_native_solc() -> None:
    result = run_shim("--version")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "solc, the solidity compiler commandline interface"
    assert re.fullmatch(r"Version: 0\.8\.30\+commit\.[0-9a-f]{8}\.Emscripten\.clang", lines[1])
    assert get_solc_version(SHIM_PATH, with_commit_hash=True) == Version("0.8.30+commit.73712a01")


def test_shim_standard_json_stdout_is_only_the_json_even_when_solc_prints(tmp_path: Path) -> None:
    # A preloaded hook makes solc's compile() print the solcjs stray line to stdout.
    noisy = tmp_path / "noisy_solc.cjs"
    noisy.write_text(
        "const Module = require('module');\n"
        "const load = Module._load;\n"
        "Module._load = function (request, ...rest) {\n"
        "  const loaded = load.call(this, request, ...rest);\n"
        "  if (/node_modules[\\\\/]solc[\\\\/]index\\.js$/.test(request)) {\n"
        "    const compile = loaded.compile;\n"
        f"    loaded.compile = (...a) => {{ console.log({json.dumps(STRAY_LINE)}); "
        "return compile(...a); };\n"
        "  }\n"
        "  return loaded;\n"
        "};\n"
    )
    env = {**os.environ, "NODE_OPTIONS": f"--require {noisy}"}

    result = run_shim(
        "--standard-json",
        stdin=standard_input({"contracts/C.sol": COUNTER_SOURCE}),
        env=env,
    )

    assert result.returncode == 0
    assert STRAY_LINE in result.stderr
    assert result.stdout.count("\n") == 1
    output = json.loads(result.stdout)
    assert error_messages(output) == []
    assert "Counter" in output["contracts"]["contracts/C.sol"]


def test_shim_resolves_openzeppelin_import_from_include_path(tmp_path: Path) -> None:
    result = run_shim(
        "--standard-json",
        "--base-path",
        str(tmp_path),
        "--include-path",
        str(NODE_MODULES),
        stdin=standard_input({"contracts/A.sol": import_source(OZ_ERC20)}),
    )

    output = json.loads(result.stdout)
    assert error_messages(output) == []
    assert OZ_ERC20 in output["sources"]


def test_shim_refuses_import_outside_allowed_paths_until_allowed(tmp_path: Path) -> None:
    base, outside = tmp_path / "base", tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    secret = outside / "Secret.sol"
    secret.write_text("// SPDX-License-Identifier: MIT\npragma solidity 0.8.30;\n")
    (base / "Link.sol").symlink_to(secret)
    sources = {"A.sol": import_source(str(secret)), "B.sol": import_source("Link.sol")}

    refused = run_shim("--standard-json", "--base-path", str(base), stdin=standard_input(sources))
    allowed = run_shim(
        "--standard-json",
        "--base-path",
        str(base),
        "--allow-paths",
        str(outside),
        stdin=standard_input(sources),
    )

    messages = error_messages(json.loads(refused.stdout))
    assert len(messages) == 2
    assert all("outside the allowed directories" in message for message in messages)
    assert error_messages(json.loads(allowed.stdout)) == []


def test_RevertWhen_shim_gets_an_unknown_flag() -> None:
    result = run_shim("--standard-json", "--optimize-yul")

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith("unrecognised option '--optimize-yul'")


def test_compute_import_paths_ignores_comments_and_strings() -> None:
    source = (
        'import "a.sol";\n'
        '// import "commented.sol";\n'
        '/* import "block.sol"; */\n'
        "import {X as Y, Z} from './b.sol';\n"
        'import * as L from "../c.sol";\n'
        'import "d.sol" as D;\n'
        'contract K { string s = "import \\"e.sol\\";"; }\n'
    )

    assert compute_import_paths(source) == ["a.sol", "./b.sol", "../c.sol", "d.sol"]


@pytest.mark.parametrize(
    ("importer", "path", "unit"),
    [
        ("contracts/A.sol", "./interfaces/I.sol", "contracts/interfaces/I.sol"),
        ("contracts/interfaces/I.sol", "../B.sol", "contracts/B.sol"),
        ("contracts/A.sol", OZ_ERC20, OZ_ERC20),
        (OZ_ERC20, "./IERC20.sol", "@openzeppelin/contracts/token/ERC20/IERC20.sol"),
    ],
)
def test_compute_source_unit_name_resolves_relative_imports(
    importer: str, path: str, unit: str
) -> None:
    assert compute_source_unit_name(importer, path) == unit


def test_compile_input_is_self_contained_and_recompiles_to_the_same_bytecode(
    token_build: compiler.CompiledContracts,
) -> None:
    sources = token_build.standard_json_input["sources"]

    assert token_build.compiler_version == "0.8.30+commit.73712a01"
    assert set(token_build.source_hashes) == set(sources)
    assert {"contracts/Token.sol", "contracts/interfaces/ICounter.sol", OZ_ERC20} <= set(sources)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in token_build.source_hashes.values())
    recompiled = compile_standard_input(token_build.standard_json_input)
    token = recompiled["contracts"]["contracts/Token.sol"]["Token"]
    artifact = token_build.artifact("Token")
    assert "0x" + token["evm"]["deployedBytecode"]["object"] == artifact.deployed_bytecode
    assert token["metadata"] == artifact.metadata
    assert sorted(token_build.artifacts) == ["ICounter", "Token"]
    assert len(artifact.immutable_references) == 1


def test_RevertWhen_published_input_lacks_a_source_the_recompile_fails(
    token_build: compiler.CompiledContracts,
) -> None:
    published = json.loads(json.dumps(token_build.standard_json_input))
    del published["sources"][OZ_ERC20]

    with pytest.raises(ContractBuildError) as raised:
        compile_standard_input(published)

    assert raised.value.detail.startswith("contracts/Token.sol:4:1: ParserError: Source")
    assert OZ_ERC20 in raised.value.detail


def test_compile_settings_are_the_pinned_ones(token_build: compiler.CompiledContracts) -> None:
    metadata = json.loads(token_build.artifact("Token").metadata)

    assert token_build.settings["optimizer"] == {"enabled": True, "runs": 200}
    assert metadata["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert metadata["settings"]["evmVersion"] == "cancun"
    assert metadata["settings"]["metadata"]["bytecodeHash"] == "ipfs"


def counting_shim(folder: Path) -> tuple[Path, Path]:
    """A wrapper around the shim that appends a line to a counter file on every run."""
    counter = folder / "runs.txt"
    wrapper = folder / "counting_solc"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{counter}"\nexec "{SHIM_PATH}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper, counter


def test_compile_second_call_hits_cache_without_running_the_compiler(tmp_path: Path) -> None:
    contracts_dir = write_contracts(tmp_path, {"Counter.sol": COUNTER_SOURCE})
    wrapper, counter = counting_shim(tmp_path)

    first = compile_contracts(contracts_dir, tmp_path / "build", solc_binary=wrapper)
    runs_after_first = counter.read_text().count("run")
    second = compile_contracts(contracts_dir, tmp_path / "build", solc_binary=wrapper)

    assert runs_after_first >= 1
    assert counter.read_text().count("run") == runs_after_first
    assert second == first
    assert list((tmp_path / "build").glob("*.json")) == [
        tmp_path / "build" / f"{first.input_hash}.json"
    ]


def test_compile_changed_source_gets_a_new_input_hash(
    tmp_path: Path, build_dir: Path, counter_compiled: compiler.CompiledContracts
) -> None:
    contracts_dir = write_contracts(tmp_path, {"Counter.sol": COUNTER_SOURCE})
    before = compile_contracts(contracts_dir, build_dir)
    assert before == counter_compiled  # same input from another folder: a cache hit
    write_contracts(tmp_path, {"Counter.sol": COUNTER_SOURCE + "// a comment changes metadata\n"})

    after = compile_contracts(contracts_dir, build_dir)

    assert after.input_hash != before.input_hash
    assert after.source_hashes != before.source_hashes
    assert (
        after.artifact("Counter").deployed_bytecode != before.artifact("Counter").deployed_bytecode
    )


def test_RevertWhen_source_has_syntax_error_message_names_file_and_line(tmp_path: Path) -> None:
    broken = COUNTER_SOURCE.replace("count += 1;", "count += 1")
    line = broken.splitlines().index("        count += 1") + 1
    contracts_dir = write_contracts(tmp_path, {"Broken.sol": broken})

    with pytest.raises(ContractBuildError) as raised:
        compile_contracts(contracts_dir, tmp_path / "build")

    detail = raised.value.detail
    assert re.match(rf"contracts/Broken\.sol:{line + 1}:\d+: ParserError: Expected ';'", detail)
    assert not (tmp_path / "build").exists() or not list((tmp_path / "build").glob("*.json"))


def test_RevertWhen_import_is_missing_message_names_the_importing_line(tmp_path: Path) -> None:
    contracts_dir = write_contracts(tmp_path, {"A.sol": import_source("@nowhere/X.sol")})

    with pytest.raises(ContractBuildError) as raised:
        compile_contracts(contracts_dir, tmp_path / "build")

    assert raised.value.detail.startswith("contracts/A.sol:3:1: ParserError: Source")
    assert "@nowhere/X.sol" in raised.value.detail


def test_RevertWhen_npm_tools_are_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(compiler, "NODE_MODULES", tmp_path / "node_modules")

    with pytest.raises(ConfigurationError) as raised:
        get_solc_npm_version()

    assert raised.value.detail == "npm tools missing: run `make setup`"


def test_RevertWhen_artifact_is_unknown(token_build: compiler.CompiledContracts) -> None:
    with pytest.raises(ConfigurationError, match="no compiled contract named Nope"):
        token_build.artifact("Nope")
