// The auditor's view: run an audit on the node (the same checks as `creditnet audit`) with its
// progress, and the latest report: checks, money per cycle, admin actions, signer sets, timelock.
import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, postJson } from "../api";
import { formatFen } from "../format";
import { t } from "../i18n";
import { ErrorLine, Section } from "../ui";

interface Check {
  id: string;
  title: string;
  result: string;
  message: string;
}

interface CycleJson {
  cycle_id: number;
  business_date: string | null;
  status: string;
  due_fen: number;
  funded_fen: number;
  claimed_fen: number;
  refunded_fen: number;
}

interface Report {
  passed: boolean;
  audited_block: number;
  checks: Check[];
  cycles: CycleJson[];
  admin_actions: { block: number; tx: string; contract: string; description: string; sender: string; category: string }[];
  signer_sets: { version: number; signers: string[]; threshold: number; block: number }[];
  governance: { operations: { id: string; state: string; calls: string[]; delay_s: number; scheduled_block: number | null }[] } | null;
}

interface AuditJob {
  job_id: string;
  state: "queued" | "running" | "passed" | "failed" | "error";
  stage: string;
  replay_total_blocks: number;
  replay_done_blocks: number;
  error: string | null;
  report: Report | null;
}

const POLL_MS = 500;

export function AuditorView() {
  const [job, setJob] = useState<AuditJob | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    getJson<AuditJob>("/v1/console/audits/latest")
      .then(setJob)
      .catch((failure) => {
        if (!(failure instanceof ApiError && failure.status === 404)) setError(failure);
      })
      .finally(() => setLoaded(true));
  }, []);

  useEffect(() => {
    if (!job || (job.state !== "queued" && job.state !== "running")) return;
    const timer = setTimeout(() => {
      getJson<AuditJob>(`/v1/console/audits/${job.job_id}`).then(setJob).catch(setError);
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [job]);

  const run = async () => {
    setError(null);
    try {
      const started = await postJson<{ job_id: string }>("/v1/console/audits", {});
      setJob(await getJson<AuditJob>(`/v1/console/audits/${started.job_id}`));
    } catch (failure) {
      setError(failure);
    }
  };

  const running = job?.state === "queued" || job?.state === "running";
  const report = job?.report ?? null;
  return (
    <div>
      <h1>{t("auditorTitle")}</h1>
      <ErrorLine error={error} />
      <button type="button" data-testid="run-audit" disabled={running} onClick={run}>
        {t("runAudit")}
      </button>
      {job && (
        <div class={`banner ${job.state === "passed" ? "ok" : running ? "" : "fail"}`} data-testid="audit-state" data-state={job.state} role="status">
          <strong>
            {running ? t("auditRunning") : job.state === "passed" ? t("auditPassed") : job.state === "failed" ? t("auditFailed") : t("auditError")}
          </strong>{" "}
          <span>
            {t("auditStage")}: {job.stage}
          </span>
          {running && job.replay_total_blocks > 0 && (
            <div>
              <label for="audit-progress">{t("auditProgress")}</label>{" "}
              <progress id="audit-progress" max={job.replay_total_blocks} value={job.replay_done_blocks} />
            </div>
          )}
          {job.error && <p>{job.error}</p>}
        </div>
      )}
      {loaded && !job && <p>{t("noReport")}</p>}
      {report && <ReportView report={report} />}
    </div>
  );
}

function ReportView(props: { report: Report }) {
  const { report } = props;
  const operations = report.governance?.operations ?? [];
  return (
    <div>
      <Section title={t("latestReport")} id="audit-report">
        <p>
          {t("auditedBlock")}: {report.audited_block} — {report.passed ? t("auditPassed") : t("auditFailed")}
        </p>
      </Section>
      <Section title={t("moneyPerCycle")} id="audit-cycles">
        <table>
          <thead>
            <tr>
              <th scope="col">{t("cycle")}</th>
              <th scope="col">{t("date")}</th>
              <th scope="col">{t("status")}</th>
              <th scope="col" class="num">{t("due")}</th>
              <th scope="col" class="num">{t("funded")}</th>
              <th scope="col" class="num">{t("claimed")}</th>
              <th scope="col" class="num">{t("refunded")}</th>
            </tr>
          </thead>
          <tbody>
            {report.cycles.map((cycle) => (
              <tr key={cycle.cycle_id}>
                <td>{cycle.cycle_id}</td>
                <td>{cycle.business_date ?? "—"}</td>
                <td>{cycle.status}</td>
                <td class="num">{formatFen(cycle.due_fen)}</td>
                <td class="num">{formatFen(cycle.funded_fen)}</td>
                <td class="num">{formatFen(cycle.claimed_fen)}</td>
                <td class="num">{formatFen(cycle.refunded_fen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title={t("checks")} id="audit-checks">
        <table>
          <thead>
            <tr>
              <th scope="col">{t("check")}</th>
              <th scope="col">{t("result")}</th>
            </tr>
          </thead>
          <tbody>
            {report.checks.map((check) => (
              <tr key={check.id}>
                <td title={check.message}>{check.title}</td>
                <td class={check.result === "pass" ? "ok" : "fail"}>{check.result === "pass" ? t("passed") : t("failed")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title={t("adminActions")} id="audit-admin-actions">
        <ol class="timeline">
          {report.admin_actions.map((action) => (
            <li key={action.tx + action.description}>
              <span class="muted">
                {t("block")} {action.block}
              </span>{" "}
              {action.contract}: {action.description} <span class="hash">{action.sender}</span>
            </li>
          ))}
        </ol>
      </Section>
      <Section title={t("signerSets")} id="audit-signer-sets">
        <table>
          <thead>
            <tr>
              <th scope="col">{t("version")}</th>
              <th scope="col">{t("block")}</th>
              <th scope="col">{t("threshold")}</th>
              <th scope="col">{t("signers")}</th>
            </tr>
          </thead>
          <tbody>
            {report.signer_sets.map((set) => (
              <tr key={set.version}>
                <td>{set.version}</td>
                <td>{set.block}</td>
                <td>{set.threshold}</td>
                <td class="hash">{set.signers.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title={t("timelockOps")} id="audit-timelock">
        {operations.length === 0 && <p>{t("noTimelockOps")}</p>}
        <table hidden={operations.length === 0}>
          <thead>
            <tr>
              <th scope="col">{t("operation")}</th>
              <th scope="col">{t("state")}</th>
              <th scope="col">{t("block")}</th>
              <th scope="col">{t("calls")}</th>
            </tr>
          </thead>
          <tbody>
            {operations.map((operation) => (
              <tr key={operation.id}>
                <td class="hash">{operation.id.slice(0, 18)}…</td>
                <td>{operation.state}</td>
                <td>{operation.scheduled_block ?? "—"}</td>
                <td>{operation.calls.join("; ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}
