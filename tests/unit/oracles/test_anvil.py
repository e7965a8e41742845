"""The embedded chain process: start, restart with state, busy port, snapshots."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from node_api.kernel.errors import ChainError, ConfigurationError
from oracles import anvil as anvil_module
from oracles.anvil import AnvilProcess, pick_free_port, revert_to_snapshot, take_snapshot
from oracles.chain import LocalAccounts, connect
from oracles.compiler import CompiledContracts
from tests.unit.oracles.counter import deploy_counter, increment, read_count

pytestmark = pytest.mark.chain


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_anvil_restart_keeps_code_storage_blocks_and_receipts(
    tmp_path: Path, counter_compiled: CompiledContracts, dev_accounts: LocalAccounts
) -> None:
    process = AnvilProcess(pick_free_port(), tmp_path / "state.json")
    with process:
        w3 = connect(process.rpc_url)
        address = deploy_counter(w3, counter_compiled, dev_accounts)
        tx_hash = increment(w3, counter_compiled, dev_accounts, address)
        code_before, block_before = w3.eth.get_code(address), w3.eth.block_number

    assert not process.is_running
    assert (tmp_path / "state.json").is_file()
    with process:
        w3 = connect(process.rpc_url)
        assert w3.eth.get_code(address) == code_before
        assert read_count(w3, counter_compiled, address) == 42
        assert w3.eth.block_number == block_before
        assert w3.eth.get_transaction_receipt(tx_hash)["blockNumber"] == block_before
        assert len(w3.eth.get_logs({"fromBlock": 0, "address": address})) == 1
    assert (tmp_path / "anvil.log").stat().st_size > 0


def test_anvil_serves_the_configured_chain_id_and_block_time() -> None:
    with AnvilProcess(pick_free_port(), None, chain_id=4242, block_time_s=0.1) as process:
        w3 = connect(process.rpc_url)
        first_block = w3.eth.block_number
        time.sleep(0.5)

        assert w3.eth.chain_id == 4242
        assert w3.eth.block_number > first_block


def test_RevertWhen_port_is_busy(listening_port: int) -> None:
    process = AnvilProcess(listening_port, None)

    with pytest.raises(ConfigurationError) as raised:
        process.start()

    assert raised.value.detail == f"port {listening_port} is busy"
    assert not process.is_running


def test_RevertWhen_anvil_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(anvil_module, "ANVIL_BINARY", tmp_path / "anvil")

    with pytest.raises(ConfigurationError) as raised:
        AnvilProcess(pick_free_port(), None).start()

    assert raised.value.detail == "npm tools missing: run `make setup`"


def test_revert_to_snapshot_undoes_changes_and_consumes_the_snapshot(w3: Web3) -> None:
    address = Web3.to_checksum_address("0x" + "c0de" * 10)
    snapshot_id = take_snapshot(w3)
    w3.provider.make_request("anvil_setCode", [address, "0x600160005500"])  # type: ignore[arg-type]
    assert w3.eth.get_code(address) != b""

    revert_to_snapshot(w3, snapshot_id)

    assert w3.eth.get_code(address) == b""
    with pytest.raises(ChainError, match="evm_revert"):
        revert_to_snapshot(w3, snapshot_id)
