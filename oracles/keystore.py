"""Oracle signer keys in encrypted keystore files (eth-account's Web3 Secret Storage).

Keys live only in memory after decryption; nothing here logs or prints a key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from node_api.kernel.errors import ConfigurationError


def load_or_create_signers(directory: Path, count: int, password: str) -> list[LocalAccount]:
    """The first `count` signers in `directory` (sorted by file name), creating missing ones."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(directory.glob("signer-*.json"))
    created: dict[Path, LocalAccount] = {}
    for index in range(len(existing), count):
        path = directory / f"signer-{index:02d}.json"
        created[path] = Account.create()
        _write_keystore(path, created[path], password)
    # A key just created is already in memory: decrypting its file again would cost another
    # scrypt derivation (about 0.9 s each) for nothing.
    return [
        created.get(path) or load_keystore(path, password)
        for path in sorted(directory.glob("signer-*.json"))[:count]
    ]


def load_keystore(path: Path, password: str) -> LocalAccount:
    try:
        key = Account.decrypt(json.loads(path.read_text()), password)
    except ValueError:
        raise ConfigurationError(
            f"cannot decrypt keystore {path.name}: wrong CREDITNET_KEYSTORE_PASSWORD?"
        ) from None
    account: LocalAccount = Account.from_key(key)
    return account


def add_signer(directory: Path, password: str) -> LocalAccount:
    """Create one more signer keystore (for rotation); returns the new account."""
    directory.mkdir(parents=True, exist_ok=True)
    index = len(list(directory.glob("signer-*.json")))
    account: LocalAccount = Account.create()
    _write_keystore(directory / f"signer-{index:02d}.json", account, password)
    return account


def _write_keystore(path: Path, account: LocalAccount, password: str) -> None:
    encrypted = Account.encrypt(account.key, password)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(encrypted, handle)
