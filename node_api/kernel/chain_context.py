"""What the API knows about the chain: RPC URL and the deployment manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class ChainContext:
    """The chain the node is attached to and the contracts it deployed there."""

    rpc_url: str
    chain_id: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def contract_addresses(self) -> dict[str, str]:
        contracts = self.manifest.get("contracts", {})
        return {name: str(info["address"]) for name, info in contracts.items()}

    @classmethod
    def from_manifest_file(cls, rpc_url: str, path: Path) -> ChainContext:
        manifest = json.loads(path.read_text())
        return cls(rpc_url=rpc_url, chain_id=int(manifest["chain_id"]), manifest=manifest)

    def fetch_latest_block(self, timeout_s: float = 2.0) -> int | None:
        """The chain head, or None when the RPC does not answer."""
        try:
            response = httpx.post(
                self.rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                timeout=timeout_s,
            )
            return int(response.json()["result"], 16)
        except (httpx.HTTPError, KeyError, ValueError):
            return None
