"""Audits run by the node in the background for the auditor's console, with progress.

`creditnet audit` is the auditor's own tool and stays the reference; this runs the same
`run_audit` inside the node so an auditor's browser can start one and watch it: the books'
export is written from the node's own database (the same stream `GET /v1/audit/export`
serves; removed after the audit, as it carries every entry's private salt), the chain is
read through the node's RPC, and the report lands in `<data dir>/console-audits/<job id>/`
as `report.json` and `report.html`, like the CLI's.
At most one audit runs at a time (an audit reads the whole chain history; two would only
compete for the same RPC). Jobs live in memory; the latest finished report is also found
on disk after a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.errors import ConflictError, CreditNetError
from oracles.audit.books_export import stream_export
from oracles.audit.report import write_report
from oracles.audit.runner import AuditConfig, run_audit
from settlement.salts import LeafSalts

log = logging.getLogger("creditnet.audit")

JobState = Literal["queued", "running", "passed", "failed", "error"]
JOBS_FOLDER: Final = "console-audits"


@dataclass
class AuditJob:
    """One audit's progress: the stage, the replayed blocks, and the outcome."""

    job_id: str
    state: JobState = "queued"
    current_stage: str = "queued"
    replay_total_blocks: int = 0
    replay_done_blocks: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None
    report: dict[str, Any] | None = None

    # The AuditProgress protocol of `oracles.audit.runner`.
    def stage(self, name: str) -> None:
        self.current_stage = name

    def start_replay(self, total_blocks: int) -> None:
        self.current_stage = "replaying the chain's events"
        self.replay_total_blocks = total_blocks
        self.replay_done_blocks = 0

    def advance(self, blocks: int) -> None:
        self.replay_done_blocks += blocks


@dataclass(frozen=True)
class AuditTarget:
    """What the node audits: its database, its chain and where it keeps reports."""

    database: Database
    settings: Settings
    rpc_url: str
    chain_id: int
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        return self.settings.deployments_dir / f"{self.chain_id}.json"

    @property
    def jobs_dir(self) -> Path:
        return self.settings.data_dir / JOBS_FOLDER


class AuditJobs:
    """The node's audit jobs (module doc): start one, read one, read the latest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, AuditJob] = {}
        self._latest: str | None = None

    def get(self, job_id: str) -> AuditJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def latest(self, jobs_dir: Path) -> AuditJob | None:
        """The latest job of this process, else the newest report on disk."""
        with self._lock:
            if self._latest is not None:
                return self._jobs[self._latest]
        return load_latest_report(jobs_dir)

    def check_idle(self) -> None:
        """ConflictError while an audit runs (one at a time, module doc)."""
        with self._lock:
            self._check_idle()

    def _check_idle(self) -> None:
        running = [job for job in self._jobs.values() if job.state in ("queued", "running")]
        if running:
            raise ConflictError(
                f"audit {running[0].job_id} is still running; wait for it to finish",
                field="audit",
                code="audit_running",
            )

    def start(self, job_id: str, target: AuditTarget) -> AuditJob:
        """Start `job_id` in a thread unless it exists already (an idempotent replay);
        ConflictError while another audit runs."""
        with self._lock:
            existing = self._jobs.get(job_id)
            if existing is not None:
                return existing
            self._check_idle()
            job = AuditJob(job_id)
            self._jobs[job_id] = job
            self._latest = job_id
        thread = threading.Thread(
            target=run_job, args=(job, target), name=f"audit-{job_id}", daemon=True
        )
        thread.start()
        return job


def run_job(job: AuditJob, target: AuditTarget) -> None:
    """Export the books, run the audit with `job` as its progress, write the report."""
    folder = target.jobs_dir / job.job_id
    export_path = folder / "export.ndjson"
    job.state = "running"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        job.current_stage = "exporting the books"
        salts = LeafSalts.from_settings(target.settings)
        with export_path.open("wb") as out:
            for line in stream_export(target.database, target.chain_id, target.manifest, salts):
                out.write(line)
        config = AuditConfig(
            rpc_url=target.rpc_url, manifest_path=target.manifest_path, export_path=export_path
        )
        report = run_audit(config, job)
        write_report(report, folder)
        job.report = dict(report.to_json())
        job.state = "passed" if report.passed else "failed"
        job.current_stage = "done"
    except CreditNetError as error:
        job.state, job.error, job.current_stage = "error", error.detail, "stopped"
    except Exception as error:  # the thread must always record its end
        log.exception("console audit failed", extra={"job_id": job.job_id})
        job.state, job.error, job.current_stage = "error", type(error).__name__, "stopped"
    finally:
        export_path.unlink(missing_ok=True)  # it carries every entry's private salt
        job.finished_at = time.time()


def load_latest_report(jobs_dir: Path) -> AuditJob | None:
    """The newest `report.json` under `jobs_dir` as a finished job, or None."""
    if not jobs_dir.is_dir():
        return None
    reports = sorted(
        jobs_dir.glob("*/report.json"), key=lambda path: path.stat().st_mtime, reverse=True
    )
    if not reports:
        return None
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    finished = reports[0].stat().st_mtime
    return AuditJob(
        job_id=reports[0].parent.name,
        state="passed" if report.get("passed") else "failed",
        current_stage="done",
        started_at=finished,
        finished_at=finished,
        report=report,
    )
