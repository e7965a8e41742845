// The lender's operations view: portfolio by bucket, decisions per hour, the manual review queue
// (approve or decline with a reason code), end-of-day runs and the oracles' health.
import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, postJson, type Session } from "../api";
import { Chart } from "../Chart";
import { formatBps, formatFen } from "../format";
import { t } from "../i18n";
import { ErrorLine, Loading, Section } from "../ui";
import { ProductFactory } from "./Products";

interface Portfolio {
  buckets: { bucket: string; lines: number; balance_fen: number }[];
  total_fen: number;
  non_performing_fen: number;
  npl_ratio_bps: number;
  written_off_fen: number;
  vintages: Vintage[];
}

interface Hourly {
  hour: string;
  approved: number;
  declined: number;
  review: number;
}

interface Queued {
  application_id: string;
  product_code: string;
  channel_id: string;
  score: number;
  reason_codes: string[];
  limit_total_fen: number;
  applied_at: string;
}

interface Queue {
  items: Queued[];
  total: number;
  next_after: string | null;
}

interface EodRun {
  as_of: string;
  status: string;
  steps: { step: string; status: string; batches: number; lines: number; postings: number }[];
}

interface OracleStatus {
  outbox_totals: Record<string, number>;
  indexer: { last_block: number | null; chain_head: number | null; lag_blocks: number | null };
}

interface OutboxAge {
  kind: string;
  waiting: number;
  oldest_age_s: number;
}

const APPROVE_REASONS = ["INCOME_VERIFIED", "IDENTITY_CONFIRMED", "POLICY_EXCEPTION"];
const DECLINE_REASONS = ["INCOME_UNVERIFIED", "IDENTITY_DOUBT", "POLICY_DECLINE"];

function useLoad<T>(path: string, reload = 0): [T | null, unknown] {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    getJson<T>(path).then(setValue).catch(setError);
  }, [path, reload]);
  return [value, error];
}

export function OperationsView(props: { session: Session }) {
  const admin = props.session.role === "lender_admin";
  return (
    <div>
      <h1>{t("opsTitle")}</h1>
      {!admin && <p>{t("adminOnly")}</p>}
      {admin && <ReviewQueue />}
      {admin && <PortfolioPart />}
      {admin && <DecisionsPart />}
      <ProductFactory admin={admin} />
      {admin && <EodPart />}
      {admin && <OraclePart />}
    </div>
  );
}

function PortfolioPart() {
  const [portfolio, error] = useLoad<Portfolio>("/v1/console/portfolio");
  return (
    <Section title={t("portfolio")} id="ops-portfolio">
      <ErrorLine error={error} />
      {!portfolio ? (
        !error && <Loading />
      ) : (
        <div class="columns">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("bucket")}</th>
                <th scope="col" class="num">{t("lines")}</th>
                <th scope="col" class="num">{t("balance")}</th>
              </tr>
            </thead>
            <tbody>
              {portfolio.buckets.map((bucket) => (
                <tr key={bucket.bucket}>
                  <td>{bucket.bucket}</td>
                  <td class="num">{bucket.lines}</td>
                  <td class="num">{formatFen(bucket.balance_fen)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">{t("totalReceivables")}</th>
                <td />
                <td class="num" data-testid="portfolio-total">{formatFen(portfolio.total_fen)}</td>
              </tr>
              <tr>
                <th scope="row">{t("npl")}</th>
                <td />
                <td class="num">{formatBps(portfolio.npl_ratio_bps)}</td>
              </tr>
              <tr>
                <th scope="row">{t("writtenOff")}</th>
                <td />
                <td class="num">{formatFen(portfolio.written_off_fen)}</td>
              </tr>
            </tfoot>
          </table>
          <Chart
            testId="chart-buckets"
            label={t("portfolio")}
            categories={portfolio.buckets.map((bucket) => bucket.bucket)}
            series={[{ name: t("balance"), type: "bar", data: portfolio.buckets.map((bucket) => bucket.balance_fen / 100) }]}
          />
        </div>
      )}
      {portfolio && <VintageTable vintages={portfolio.vintages} />}
    </Section>
  );
}

interface Vintage {
  vintage: string;
  lines: number;
  balance_fen: number;
  m1_plus_bps: number;
  m3_plus_bps: number;
}

function VintageTable(props: { vintages: Vintage[] }) {
  const { vintages } = props;
  return (
    <div data-testid="ops-vintages">
      <h3>{t("vintages")}</h3>
      <div class="columns">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("vintage")}</th>
                <th scope="col" class="num">{t("lines")}</th>
                <th scope="col" class="num">{t("balance")}</th>
                <th scope="col" class="num">M1+</th>
                <th scope="col" class="num">M3+</th>
              </tr>
            </thead>
            <tbody>
              {vintages.map((row) => (
                <tr key={row.vintage}>
                  <td>{row.vintage}</td>
                  <td class="num">{row.lines}</td>
                  <td class="num">{formatFen(row.balance_fen)}</td>
                  <td class="num">{formatBps(row.m1_plus_bps)}</td>
                  <td class="num">{formatBps(row.m3_plus_bps)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Chart
            testId="chart-vintages"
            label={t("vintages")}
            categories={vintages.map((row) => row.vintage)}
            series={[
              { name: "M1+ %", type: "line", data: vintages.map((row) => row.m1_plus_bps / 100) },
              { name: "M3+ %", type: "line", data: vintages.map((row) => row.m3_plus_bps / 100) },
            ]}
          />
      </div>
    </div>
  );
}

function DecisionsPart() {
  const [hours, error] = useLoad<Hourly[]>("/v1/console/decisions-per-hour?hours=48");
  return (
    <Section title={t("decisionsPerHour")} id="ops-decisions">
      <ErrorLine error={error} />
      {hours && (
        <Chart
          testId="chart-decisions"
          label={t("decisionsPerHour")}
          categories={hours.map((row) => row.hour.slice(5).replace("T", " "))}
          series={[
            { name: t("approved"), type: "bar", stack: "d", data: hours.map((row) => row.approved) },
            { name: t("declined"), type: "bar", stack: "d", data: hours.map((row) => row.declined) },
            { name: t("review"), type: "bar", stack: "d", data: hours.map((row) => row.review) },
          ]}
        />
      )}
    </Section>
  );
}

function ReviewQueue() {
  const [reload, setReload] = useState(0);
  const [queue, error] = useLoad<Queue>("/v1/console/review-queue?limit=50", reload);
  const [decided, setDecided] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [reasons, setReasons] = useState<Record<string, string>>({});

  const decide = async (item: Queued, action: "approve" | "decline") => {
    setActionError(null);
    const reason = reasons[`${item.application_id}-${action}`] ?? (action === "approve" ? APPROVE_REASONS[0] : DECLINE_REASONS[0]);
    try {
      const view = await postJson<{ status: string; credit_line_id: number | null }>(
        `/v1/applications/${item.application_id}/review`,
        { action, reason_code: reason },
      );
      const line = view.credit_line_id ? `, ${t("creditLine")} #${view.credit_line_id}` : "";
      setDecided(`${item.application_id}: ${view.status} (${reason})${line}`);
      setReload((n) => n + 1);
    } catch (failure) {
      setActionError(failure);
    }
  };

  return (
    <Section title={t("reviewQueue")} id="ops-review-queue">
      <ErrorLine error={error instanceof ApiError && error.status === 403 ? null : error} />
      <ErrorLine error={actionError} />
      {decided && (
        <p class="banner ok" role="status" data-testid="review-decided">
          {t("decided")}: {decided}
        </p>
      )}
      {queue && queue.items.length === 0 && <p>{t("reviewEmpty")}</p>}
      {queue && queue.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("application")}</th>
              <th scope="col">{t("product")}</th>
              <th scope="col">{t("channel")}</th>
              <th scope="col" class="num">{t("score")}</th>
              <th scope="col">{t("reasons")}</th>
              <th scope="col" class="num">{t("limit")}</th>
              <th scope="col">{t("appliedAt")}</th>
              <th scope="col">{t("approve")}</th>
              <th scope="col">{t("decline")}</th>
            </tr>
          </thead>
          <tbody>
            {queue.items.map((item) => (
              <tr key={item.application_id} data-testid="review-row" data-application={item.application_id}>
                <td class="hash">{item.application_id}</td>
                <td>{item.product_code}</td>
                <td>{item.channel_id}</td>
                <td class="num">{item.score}</td>
                <td>{item.reason_codes.join(", ")}</td>
                <td class="num">{formatFen(item.limit_total_fen)}</td>
                <td>{item.applied_at.slice(0, 19).replace("T", " ")}</td>
                {(["approve", "decline"] as const).map((action) => (
                  <td key={action}>
                    <label class="sr-only" for={`reason-${action}-${item.application_id}`}>
                      {t("reason")}
                    </label>
                    <select
                      id={`reason-${action}-${item.application_id}`}
                      onChange={(e) => setReasons({ ...reasons, [`${item.application_id}-${action}`]: e.currentTarget.value })}
                    >
                      {(action === "approve" ? APPROVE_REASONS : DECLINE_REASONS).map((code) => (
                        <option key={code} value={code}>
                          {code}
                        </option>
                      ))}
                    </select>{" "}
                    <button type="button" data-testid={`${action}-${item.application_id}`} onClick={() => decide(item, action)}>
                      {t(action)}
                    </button>
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

interface StepTiming {
  step: string;
  dates: number;
  total_s: number;
  mean_s: number;
}

function EodPart() {
  const [runs, error] = useLoad<EodRun[]>("/v1/console/eod-runs?limit=10");
  const [timings, timingsError] = useLoad<StepTiming[]>("/v1/console/eod-step-timings");
  return (
    <Section title={t("eodRuns")} id="ops-eod">
      <ErrorLine error={error ?? timingsError} />
      <h3>{t("stepTimings")}</h3>
      {timings && timings.length === 0 && <p>{t("noStepTimings")}</p>}
      {timings && timings.length > 0 && (
        <table data-testid="eod-step-timings">
          <thead>
            <tr>
              <th scope="col">{t("step")}</th>
              <th scope="col" class="num">{t("dates")}</th>
              <th scope="col" class="num">{t("meanSeconds")}</th>
              <th scope="col" class="num">{t("totalSeconds")}</th>
            </tr>
          </thead>
          <tbody>
            {timings.map((row) => (
              <tr key={row.step}>
                <td>{row.step}</td>
                <td class="num">{row.dates}</td>
                <td class="num">{row.mean_s.toFixed(3)}</td>
                <td class="num">{row.total_s.toFixed(2)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("asOf")}</th>
              <th scope="col">{t("status")}</th>
              <th scope="col">{t("steps")}</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.as_of}>
                <td>{run.as_of}</td>
                <td>{run.status}</td>
                <td>{run.steps.map((step) => `${step.step} ${step.status} (${step.batches}/${step.lines}/${step.postings})`).join(" · ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function OraclePart() {
  const [status, error] = useLoad<OracleStatus>("/v1/oracles/status");
  const [ages, agesError] = useLoad<OutboxAge[]>("/v1/console/outbox-age");
  return (
    <Section title={t("oracleHealth")} id="ops-oracles">
      <ErrorLine error={error ?? agesError} />
      {status && (
        <dl class="facts">
          <dt>{t("outboxDepth")}</dt>
          <dd data-testid="outbox-depth">
            {Object.entries(status.outbox_totals)
              .map(([state, count]) => `${state} ${count}`)
              .join(", ") || "0"}
          </dd>
          <dt>{t("lastIndexed")}</dt>
          <dd>{status.indexer.last_block ?? "—"}</dd>
          <dt>{t("chainHead")}</dt>
          <dd>{status.indexer.chain_head ?? "—"}</dd>
          <dt>{t("indexerLag")}</dt>
          <dd data-testid="indexer-lag">{status.indexer.lag_blocks ?? "—"}</dd>
          <dt>{t("outboxAge")}</dt>
          <dd>
            {ages && ages.length === 0
              ? t("nothingWaiting")
              : ages?.map((age) => `${age.kind}: ${age.waiting} ${t("waiting")}, ${Math.round(age.oldest_age_s)} ${t("seconds")}`).join("; ")}
          </dd>
        </dl>
      )}
    </Section>
  );
}
