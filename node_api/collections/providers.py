"""Contact providers: where the dispatcher hands messages (SMS, voice, app).

A provider must be idempotent by the message's `idempotency_key` (the outbox business
key): sending a key it already accepted returns the first receipt and delivers nothing
again. That is what makes a retry after a crash safe; real SMS and push gateways take a
client message id for the same purpose.

The embedded `JsonlProvider` stands in for a gateway: it appends each accepted message
to a JSONL file in the data folder (tests and the demo read it), with the recipient's
number masked, so no full number is ever written outside the vault.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import orjson

from node_api.collections.contacts import mask_phone

NOTIFICATIONS_FILE: Final = "notifications.jsonl"


class ProviderError(Exception):
    """A send that failed for now (retried with backoff). `reason` is the provider's code,
    never message content or a number."""

    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderRefusal(ProviderError):
    """A send the provider will never accept (invalid number, blocked): not retried."""

    retryable = False


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    idempotency_key: str
    channel: str
    address: str
    """The full number for SMS and voice; the line's app address for app messages."""
    body: str


class ContactProvider(Protocol):
    def send(self, message: OutgoingMessage) -> str:
        """Deliver once per `idempotency_key`; return the provider's receipt id."""
        ...


class JsonlProvider:
    """Appends accepted messages to `path`, one JSON object per line (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._accepted: dict[str, str] | None = None

    def send(self, message: OutgoingMessage) -> str:
        with self._lock:
            accepted = self._load()
            receipt = accepted.get(message.idempotency_key)
            if receipt is not None:
                return receipt
            receipt = "local-" + hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:24]
            record = {
                "idempotency_key": message.idempotency_key,
                "receipt": receipt,
                "channel": message.channel,
                "to": mask_phone(message.address)
                if message.address.startswith("+")
                else message.address,
                "body": message.body,
            }
            self._append(orjson.dumps(record) + b"\n")
            accepted[message.idempotency_key] = receipt
            return receipt

    def _load(self) -> dict[str, str]:
        if self._accepted is None:
            self._accepted = {
                str(record["idempotency_key"]): str(record["receipt"])
                for record in read_jsonl(self.path)
            }
        return self._accepted

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            if file.tell() > 0 and not _ends_with_newline(self.path):
                file.write(b"\n")  # a line torn by a crash stays alone on its line
            file.write(line)
            file.flush()
            os.fsync(file.fileno())


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """The complete records of a JSONL file (a torn last line is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
