"""`GET /v1/audit/export`: what an auditor needs from the books, streamed as NDJSON.

Auditor role only. The stream follows `oracles.audit.export_format` (header, the
deployment manifest, product terms, agreements, cycles with all their entries, trailer)
and carries no personal data: borrowers appear only as `borrowerRef`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from node_api.http.authz import AuditorDep
from node_api.http.services import ServicesDep
from node_api.kernel.errors import ConflictError
from oracles.audit.books_export import stream_export
from oracles.audit.export_format import MEDIA_TYPE
from settlement.salts import LeafSalts

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/audit/export",
    name="audit_export",
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "the export, NDJSON"}},
)
def get_audit_export(
    services: ServicesDep,
    _principal: AuditorDep,
) -> StreamingResponse:
    """Stream the books' audit export (format `creditnet-audit-export`, version 2): every
    settlement entry comes with its private leaf salt, so the auditor can recompute the
    leaves."""
    chain = services.chain
    if chain is None:
        raise ConflictError(
            "the node is not attached to a chain yet: no deployment to audit", field="chain"
        )
    manifest = chain.manifest or None
    return StreamingResponse(
        stream_export(
            services.database, chain.chain_id, manifest, LeafSalts.from_settings(services.settings)
        ),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="creditnet-audit-export.ndjson"'},
    )
