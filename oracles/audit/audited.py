"""The audited contracts: the manifest's addresses with the published sources' ABIs."""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from oracles.abi_codec import ContractCodec
from oracles.audit.recompile import Recompiled
from oracles.compiler import AbiEntry
from oracles.manifest import Manifest


@dataclass(frozen=True)
class AuditedContracts:
    """Contract name -> checksummed address and codec, for every manifest contract whose
    ABI the published sources provide."""

    addresses: dict[str, str]
    codecs: dict[str, ContractCodec]
    abis: dict[str, list[AbiEntry]]
    deploy_blocks: dict[str, int]

    @classmethod
    def build(cls, manifest: Manifest, recompiled: Recompiled) -> AuditedContracts:
        names = [name for name in manifest.contracts if name in recompiled.artifacts]
        return cls(
            addresses={n: to_checksum_address(manifest.contracts[n].address) for n in names},
            codecs={n: ContractCodec(recompiled.artifacts[n].abi) for n in names},
            abis={n: recompiled.artifacts[n].abi for n in names},
            deploy_blocks={n: manifest.contracts[n].deploy_block for n in names},
        )

    def by_address(self) -> dict[str, tuple[str, ContractCodec]]:
        """Lowercase address -> (name, codec), for decoding logs."""
        return {
            address.lower(): (name, self.codecs[name]) for name, address in self.addresses.items()
        }

    def lower_addresses(self) -> dict[str, str]:
        return {name: address.lower() for name, address in self.addresses.items()}

    def has(self, name: str) -> bool:
        return name in self.addresses

    def role_names(self) -> dict[str, str]:
        """Role hash (0x-hex) -> name, from the ABIs' `*_ROLE` constants: OpenZeppelin's
        `DEFAULT_ADMIN_ROLE` is zero, every other role is keccak256 of its name."""
        names = {"0x" + "00" * 32: "DEFAULT_ADMIN_ROLE"}
        for abi in self.abis.values():
            for item in abi:
                name = str(item.get("name", ""))
                is_role = item.get("type") == "function" and name.endswith("_ROLE")
                if is_role and not item["inputs"] and name != "DEFAULT_ADMIN_ROLE":
                    names["0x" + keccak(text=name).hex()] = name
        return names
