"""Audits the auditor's console starts on the node and watches (auditor keys).

`POST /v1/console/audits` starts the same audit `creditnet audit` runs
(`oracles.audit.jobs`: the node's export, its chain, report files in the data folder) in
the background and answers 202 with the job; `GET /v1/console/audits/{job_id}` and
`GET /v1/console/audits/latest` show its stage, the replay's progress in blocks and, once
done, the whole report (`report.json`'s form: checks, cycles with their money figures,
admin actions, signer sets, timelock operations). The POST takes an `Idempotency-Key`: a
replay answers the same job and starts nothing.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from node_api.http.authz import AuditorDep
from node_api.http.idempotency import OnceDep
from node_api.http.renderers import to_response
from node_api.http.schemas import PROBLEMS
from node_api.http.services import ServicesDep
from node_api.idempotency import IDEMPOTENCY_HEADER
from node_api.kernel.errors import ConflictError, NotFoundError
from oracles.audit.jobs import JOBS_FOLDER, AuditJob, AuditJobs, AuditTarget

router = APIRouter(tags=["audit"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="the audit job's id")]


def get_audit_jobs(request: Request) -> AuditJobs:
    jobs: AuditJobs = request.app.state.audit_jobs
    return jobs


AuditJobsDep = Annotated[AuditJobs, Depends(get_audit_jobs)]


class AuditStartedOut(BaseModel):
    job_id: str


class AuditJobOut(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    job_id: str
    state: str
    """queued, running, passed, failed (a check failed) or error (the audit could not run)."""
    stage: str
    replay_total_blocks: int
    replay_done_blocks: int
    started_at: float
    """Unix seconds."""
    finished_at: float | None
    error: str | None
    report: dict[str, Any] | None
    """The report (`report.json`'s form) once the audit finished."""


def _job_view(job: AuditJob) -> AuditJobOut:
    return AuditJobOut(
        job_id=job.job_id,
        state=job.state,
        stage=job.current_stage,
        replay_total_blocks=job.replay_total_blocks,
        replay_done_blocks=job.replay_done_blocks,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        report=job.report,
    )


@router.post(
    "/v1/console/audits",
    name="console_audits_create",
    status_code=202,
    response_model=AuditStartedOut,
    responses=PROBLEMS,
    summary=f"Run an audit of the node's chain and books (requires {IDEMPOTENCY_HEADER})",
)
def post_audit(
    services: ServicesDep, jobs: AuditJobsDep, who: AuditorDep, once: OnceDep
) -> Response:
    """Start an audit in the background; follow it at `/v1/console/audits/{job_id}`. 409
    while another audit runs or when the node is attached to no deployed chain."""
    chain = services.chain
    if chain is None or not chain.manifest:
        raise ConflictError(
            "the node is not attached to a deployed chain: nothing to audit", field="chain"
        )
    target = AuditTarget(
        database=services.database,
        settings=services.settings,
        rpc_url=chain.rpc_url,
        chain_id=chain.chain_id,
        manifest=chain.manifest,
    )

    def operation() -> AuditStartedOut:
        jobs.check_idle()  # a 409 here is stored: its replays answer it too
        return AuditStartedOut(job_id=secrets.token_hex(8))

    stored = once.stored(who, None, 202, operation)
    job_id = stored.body.get("job_id")
    if stored.status_code == 202 and isinstance(job_id, str):
        jobs.start(job_id, target)
    return to_response(stored)


@router.get(
    "/v1/console/audits/latest",
    name="console_audits_latest",
    response_model=AuditJobOut,
    responses=PROBLEMS,
)
def get_latest_audit(services: ServicesDep, jobs: AuditJobsDep, who: AuditorDep) -> AuditJobOut:
    """The latest audit the node ran (this run's, else the newest report on disk)."""
    job = jobs.latest(services.settings.data_dir / JOBS_FOLDER)
    if job is None:
        raise NotFoundError("the node has run no audit yet", field="job_id")
    return _job_view(job)


@router.get(
    "/v1/console/audits/{job_id}",
    name="console_audits_get",
    response_model=AuditJobOut,
    responses=PROBLEMS,
)
def get_audit(job_id: JobId, jobs: AuditJobsDep, who: AuditorDep) -> AuditJobOut:
    """One audit's stage and progress, and its report once finished."""
    job = jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"no audit {job_id} in this node's run", field="job_id")
    return _job_view(job)
