"""The app of `creditnet signer serve`: a partner's (or an auditor's) own oracle signer.

It serves exactly the remote signer protocol the lender's node speaks
(`oracles.signers.RemoteSigner`): `GET /v1/signer` (the signer's address),
`POST /v1/signer/cycle-report` and `POST /v1/signer/line-state-report` (the report as
JSON, answered `{"address", "signature"}`; a refusal is 409 problem+json naming why), plus
`GET /healthz` for supervisors. Errors are the node's problem+json
(`node_api.http.problems`). The signer decides (`settlement.partner_signer`); this module
only parses and answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, cast

from fastapi import Body, FastAPI
from pydantic import BaseModel

from node_api.http.middleware import BodyLimitMiddleware
from node_api.http.problems import install_problem_handlers
from oracles.signers import (
    CYCLE_REPORT_PATH,
    LINE_STATE_REPORT_PATH,
    SIGNER_INFO_PATH,
    CycleReportJson,
    LineStateReportJson,
    OracleSigner,
    SignatureJson,
    SignerInfoJson,
    handle_sign_request,
)

MAX_REPORT_BYTES: Final = 256 * 1024
"""A cycle report is a few ids and amounts per partner: far below this."""

ReportBody = Annotated[dict[str, Any], Body(description="The report, as the node sends it.")]


class SignerInfoOut(BaseModel):
    address: str


class SignatureOut(SignerInfoOut):
    signature: str


class HealthOut(BaseModel):
    status: str
    address: str


def create_signer_app(signer: OracleSigner) -> FastAPI:
    """The signer's API around `signer` (its checks and its key stay in `signer`)."""
    app = FastAPI(
        title="CreditNet partner signer",
        version="0.1.0",
        description="An oracle signer run by a funding partner or an auditor: it signs a "
        "settlement cycle report only when its own checks of the lender's node agree.",
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)

    @app.get(SIGNER_INFO_PATH, response_model=SignerInfoOut, name="signer_info")
    def get_signer() -> SignerInfoJson:
        """The signer's address (one of the OracleQuorum's signers)."""
        return {"address": signer.address}

    @app.post(CYCLE_REPORT_PATH, response_model=SignatureOut, name="signer_cycle_report")
    def post_cycle_report(body: ReportBody) -> SignatureJson:
        """Sign a settlement cycle report, or refuse it (409) with the reason."""
        return handle_sign_request(signer, CYCLE_REPORT_PATH, cast(CycleReportJson, body))

    @app.post(LINE_STATE_REPORT_PATH, response_model=SignatureOut, name="signer_line_state")
    def post_line_state_report(body: ReportBody) -> SignatureJson:
        """Sign a credit-line state report, or refuse it (409) with the reason."""
        return handle_sign_request(signer, LINE_STATE_REPORT_PATH, cast(LineStateReportJson, body))

    @app.get("/healthz", response_model=HealthOut, name="signer_health")
    def get_health() -> HealthOut:
        """The signer is serving."""
        return HealthOut(status="ok", address=signer.address)

    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_REPORT_BYTES)
    return app
