"""`creditnet pii rotate` re-encrypts every envelope under the new key; all still decrypt."""

from __future__ import annotations

import base64
import json

from sqlalchemy import select
from typer.testing import CliRunner

from node_api.cli import app as cli_app
from node_api.kernel.config import DEV_PII_KEY, Settings
from node_api.kernel.db import Database
from node_api.onboarding.application_input import ApplicationInput
from node_api.onboarding.application_store import get_application_context, get_customer_context
from node_api.onboarding.context import OnboardingContext
from node_api.onboarding.pii import get_envelope_key_id
from node_api.onboarding.replay import replay_application
from node_api.onboarding.tables import application_table, customer_table
from tests.integration.onboarding.onboarding_helpers import (
    BAD_PROFILE,
    Api,
    application_body,
    new_applicant,
)

NEW_KEY = base64.b64encode(b"rotation-test-key-of-32-bytes!!!").decode()


def _blobs(database: Database) -> dict[str, list[tuple[str, bytes]]]:
    with database.engine.connect() as conn:
        return {
            "customer": [
                (str(i), bytes(b))
                for i, b in conn.execute(select(customer_table.c.id, customer_table.c.pii_enc))
            ],
            "application": [
                (str(i), bytes(b))
                for i, b in conn.execute(
                    select(application_table.c.id, application_table.c.inputs_enc)
                )
            ],
        }


def _rotate(database: Database, keys: str) -> dict[str, object]:
    env = {"CREDITNET_DATABASE_URL": database.url, "CREDITNET_PII_KEYS": keys}
    result = CliRunner().invoke(cli_app, ["pii", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    return report


def test_rotation_re_encrypts_every_envelope_and_everything_still_decrypts(
    api: Api, database: Database, tmp_path: object
) -> None:
    people = [new_applicant() for _ in range(3)]
    sent = [application_body(people[0]), application_body(people[1], profile=BAD_PROFILE)]
    sent += [application_body(people[2]), application_body(people[0])]
    ids = [api.apply(body).json()["application_id"] for body in sent]
    before = _blobs(database)
    assert {get_envelope_key_id(b) for rows in before.values() for _, b in rows} == {"k1"}

    report = _rotate(database, f"k2:{NEW_KEY},k1:{DEV_PII_KEY}")
    assert report["active_key_id"] == "k2"
    assert report["customer"] == {"checked": 3, "rotated": 3}
    assert report["application"] == {"checked": 4, "rotated": 4}

    after = _blobs(database)
    assert {get_envelope_key_id(b) for rows in after.values() for _, b in rows} == {"k2"}
    new_only = OnboardingContext.from_settings(Settings(pii_keys=f"k2:{NEW_KEY}"))  # type: ignore[arg-type]
    decrypted = {
        application_id: ApplicationInput.from_json(
            new_only.vault.decrypt(blob, get_application_context(application_id))
        )
        for application_id, blob in after["application"]
    }
    assert [decrypted[i].id_number for i in ids] == [body["id_number"] for body in sent]
    assert [decrypted[i].name for i in ids] == [body["name"] for body in sent]
    for customer_id, blob in after["customer"]:
        pii = json.loads(new_only.vault.decrypt(blob, get_customer_context(customer_id)))
        assert pii["id_number"] in {person["id_number"] for person in people}
    with database.engine.connect() as conn:
        assert all(replay_application(conn, i, new_only).matches for i in ids)

    again = _rotate(database, f"k2:{NEW_KEY},k1:{DEV_PII_KEY}")
    assert again["application"] == {"checked": 4, "rotated": 0}
