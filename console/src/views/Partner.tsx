// The funding partner's view: its cycles with the books' and the chain's state side by side, its
// entries (paged, searchable, downloadable), charts of its money, and verification of every entry
// in this browser against the chain (verify.ts), without relying on the node's own verification.
import { useEffect, useMemo, useState } from "preact/hooks";
import { getJson, getText, type Session } from "../api";
import { Chart } from "../Chart";
import { download as saveFile, formatFen } from "../format";
import { t, type MessageKey } from "../i18n";
import { ErrorLine, Loading, Pager, Section } from "../ui";
import {
  parseNdjson,
  readChain,
  readContracts,
  toCsv,
  verifyEntries,
  type Contracts,
  type Download,
  type FailureReason,
  type Outcome,
} from "../verify";

interface PartnerCycle {
  cycle_id: number;
  cycle_date: string;
  books_state: string;
  chain_state: string | null;
  entries_root: string | null;
  net_position_fen: number;
  entry_count: number;
  chain_position_settled_fen: number | null;
  chain_funded_fen: number | null;
  chain_claimed_fen: number | null;
}

interface CyclePage {
  items: PartnerCycle[];
  next_before: number | null;
}

interface CycleFlows {
  cycle_id: number;
  cycle_date: string;
  by_kind_fen: Record<string, number>;
  net_fen: number;
}

interface FundedVintage {
  vintage: string;
  lines: number;
  balance_fen: number;
  m1_plus_bps: number;
  m3_plus_bps: number;
}

interface MonthPrincipal {
  month: string;
  funded_fen: number;
  repaid_fen: number;
  outstanding_fen: number;
}

const RPC_ITEM = "creditnet.rpcUrl";
const PAGE_SIZE = 50;
const CYCLES_PER_PAGE = 31;
const REASONS: Record<FailureReason, MessageKey> = {
  proof: "reasonProof",
  cycle: "reasonCycle",
  partner: "reasonPartner",
  duplicate: "reasonDuplicate",
};

const yuan = (fen: number) => Number(fen) / 100; // chart scale only; every figure shown as text is exact

export function PartnerView(props: { session: Session }) {
  const [rpcUrl, setRpcUrl] = useState(sessionStorage.getItem(RPC_ITEM) ?? props.session.rpc_url_suggested ?? "");
  const [rpcInput, setRpcInput] = useState(rpcUrl);
  const [pages, setPages] = useState<CyclePage[]>([]);
  const [pageIndex, setPageIndex] = useState(0);
  const cycles = pages[pageIndex]?.items ?? null;
  const [contracts, setContracts] = useState<Contracts | null>(null);
  const [flows, setFlows] = useState<CycleFlows[]>([]);
  const [principal, setPrincipal] = useState<MonthPrincipal[]>([]);
  const [vintages, setVintages] = useState<FundedVintage[]>([]);
  const [openId, setOpenId] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    Promise.all([
      getJson<CyclePage>(`/v1/partner/cycle-page?limit=${CYCLES_PER_PAGE}`),
      getJson<Parameters<typeof readContracts>[0]>("/v1/contracts"),
      getJson<CycleFlows[]>("/v1/partner/cash-flows?limit=90"),
      getJson<MonthPrincipal[]>("/v1/partner/funded-principal"),
    ])
      .then(([firstPage, published, cashFlows, months]) => {
        setPages([firstPage]);
        setContracts(readContracts(published));
        setFlows(cashFlows);
        setPrincipal(months);
      })
      .catch(setError);
    // The vintages scan the co-funded lines' receivables: loaded on their own, not awaited.
    getJson<FundedVintage[]>("/v1/partner/vintages").then(setVintages).catch(setError);
  }, []);

  const useRpc = (event: Event) => {
    event.preventDefault();
    sessionStorage.setItem(RPC_ITEM, rpcInput.trim());
    setRpcUrl(rpcInput.trim());
  };

  const older = async () => {
    const before = pages[pageIndex]?.next_before;
    if (pageIndex + 1 < pages.length) return setPageIndex(pageIndex + 1);
    if (!before) return;
    try {
      const page = await getJson<CyclePage>(`/v1/partner/cycle-page?limit=${CYCLES_PER_PAGE}&before=${before}`);
      setPages([...pages, page]);
      setPageIndex(pageIndex + 1);
    } catch (failure) {
      setError(failure);
    }
  };
  const open = pages.flatMap((page) => page.items).find((cycle) => cycle.cycle_id === openId) ?? null;
  return (
    <div>
      <h1>
        {t("partnerTitle")} #{props.session.partner_id}
      </h1>
      <form class="inline" onSubmit={useRpc}>
        <label for="rpc-url">{t("rpcUrl")}</label>
        <input id="rpc-url" type="url" value={rpcInput} onInput={(e) => setRpcInput(e.currentTarget.value)} size={40} />
        <button type="submit">{t("rpcSave")}</button>
      </form>
      {!rpcUrl && <p>{t("rpcNone")}</p>}
      <ErrorLine error={error} />
      <Section title={t("cycles")} id="partner-cycles">
        {cycles === null ? (
          <Loading />
        ) : cycles.length === 0 ? (
          <p>{t("noCycles")}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">{t("cycle")}</th>
                <th scope="col">{t("date")}</th>
                <th scope="col">{t("booksState")}</th>
                <th scope="col">{t("chainState")}</th>
                <th scope="col" class="num">{t("position")}</th>
                <th scope="col" class="num">{t("entries")}</th>
                <th scope="col">
                  <span class="sr-only">{t("open")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {cycles.map((cycle) => (
                <tr key={cycle.cycle_id}>
                  <td>{cycle.cycle_id}</td>
                  <td>{cycle.cycle_date}</td>
                  <td>{cycle.books_state}</td>
                  <td>{cycle.chain_state ?? "—"}</td>
                  <td class="num">{formatFen(cycle.net_position_fen)}</td>
                  <td class="num">{cycle.entry_count}</td>
                  <td>
                    <button type="button" data-testid={`open-cycle-${cycle.cycle_id}`} onClick={() => setOpenId(cycle.cycle_id)}>
                      {t("open")} {cycle.cycle_id}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <nav class="pager" aria-label={t("cycles")}>
          <button type="button" disabled={pageIndex === 0} onClick={() => setPageIndex(pageIndex - 1)}>
            {t("newer")}
          </button>
          <button type="button" disabled={!pages[pageIndex]?.next_before} onClick={older}>
            {t("older")}
          </button>
        </nav>
      </Section>
      {open && contracts && (
        <CycleDetail key={open.cycle_id} cycle={open} contracts={contracts} rpcUrl={rpcUrl} partnerId={props.session.partner_id ?? 0} />
      )}
      <Section title={t("cashFlows")} id="partner-cash-flows">
        <CashFlowChart flows={flows} />
      </Section>
      <Section title={t("fundedPrincipal")} id="partner-funded-principal">
        <Chart
          testId="chart-funded-principal"
          label={t("fundedPrincipal")}
          categories={principal.map((item) => item.month)}
          series={[
            { name: t("funded"), type: "bar", data: principal.map((item) => yuan(item.funded_fen)) },
            { name: t("repaid"), type: "bar", data: principal.map((item) => yuan(item.repaid_fen)) },
            { name: t("outstanding"), type: "line", data: principal.map((item) => yuan(item.outstanding_fen)) },
          ]}
        />
      </Section>
      <Section title={t("fundedVintages")} id="partner-vintages">
        <Chart
          testId="chart-funded-vintages"
          label={t("fundedVintages")}
          categories={vintages.map((item) => item.vintage)}
          series={[
            { name: "M1+ %", type: "line", data: vintages.map((item) => item.m1_plus_bps / 100) },
            { name: "M3+ %", type: "line", data: vintages.map((item) => item.m3_plus_bps / 100) },
          ]}
        />
      </Section>
    </div>
  );
}

function CashFlowChart(props: { flows: CycleFlows[] }) {
  const kinds = useMemo(() => Array.from(new Set(props.flows.flatMap((item) => Object.keys(item.by_kind_fen)))).sort(), [props.flows]);
  const series = useMemo(
    () =>
      kinds.map((kind) => ({
        name: kind,
        type: "bar" as const,
        stack: "flows",
        data: props.flows.map((item) => yuan(item.by_kind_fen[kind] ?? 0)),
      })),
    [kinds, props.flows],
  );
  const categories = useMemo(() => props.flows.map((item) => String(item.cycle_id)), [props.flows]);
  return <Chart testId="chart-cash-flows" label={t("cashFlows")} categories={categories} series={series} />;
}

function CycleDetail(props: { cycle: PartnerCycle; contracts: Contracts; rpcUrl: string; partnerId: number }) {
  const { cycle, contracts, rpcUrl, partnerId } = props;
  const [entries, setEntries] = useState<Download | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [query, setQuery] = useState("");
  const [page, setPage] = useState(0);

  const verify = async (download: Download) => {
    setBusy(true);
    setError(null);
    setOutcome(null);
    try {
      const chain = await readChain(rpcUrl, contracts, cycle.cycle_id, partnerId);
      setOutcome(verifyEntries(download, chain, contracts.leafTypes, cycle.cycle_id, partnerId));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    getText(`/v1/partner/cycles/${cycle.cycle_id}/entries.ndjson`)
      .then((text) => {
        const download = parseNdjson(text);
        setEntries(download);
        return verify(download);
      })
      .catch(setError);
  }, [cycle.cycle_id, rpcUrl]);

  const verifyFile = async (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      const download = parseNdjson(await file.text());
      setEntries(download);
      await verify(download);
    } catch (failure) {
      setError(failure);
    }
  };

  const rows = useMemo(() => {
    const all = outcome?.results ?? entries?.entries.map((entry) => ({ entry, verified: false, reason: null })) ?? [];
    const needle = query.trim().toLowerCase();
    if (!needle) return all;
    return all.filter(({ entry }) => String(entry.entry_id).includes(needle) || entry.kind_name.toLowerCase().includes(needle));
  }, [outcome, entries, query]);
  const pages = Math.ceil(rows.length / PAGE_SIZE);
  const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const chain = outcome?.chain;

  return (
    <Section title={`${t("cycle")} ${cycle.cycle_id}`} id="cycle-detail">
      <ErrorLine error={error} />
      <h3>{t("booksVsChain")}</h3>
      <table data-testid="books-vs-chain">
        <thead>
          <tr>
            <th scope="col">{t("fact")}</th>
            <th scope="col">{t("books")}</th>
            <th scope="col">{t("chainRead")}</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">{t("root")}</th>
            <td class="hash">{cycle.entries_root}</td>
            <td class="hash" data-testid="chain-root">{chain?.root ?? "—"}</td>
          </tr>
          <tr>
            <th scope="row">{t("status")}</th>
            <td>
              {cycle.books_state} / {cycle.chain_state ?? "—"}
            </td>
            <td data-testid="chain-status">{chain?.statusName ?? "—"}</td>
          </tr>
          <tr>
            <th scope="row">{t("netPosition")}</th>
            <td class="num">{cycle.net_position_fen}</td>
            <td class="num" data-testid="chain-position">{chain ? chain.netPositionFen.toString() : "—"}</td>
          </tr>
          <tr>
            <th scope="row">{t("cycleFundedClaimed")}</th>
            <td class="num">
              {cycle.chain_funded_fen ?? "—"} / {cycle.chain_claimed_fen ?? "—"}
            </td>
            <td class="num" data-testid="chain-funded-claimed">
              {chain ? `${chain.fundedFen} / ${chain.claimedFen}` : "—"}
            </td>
          </tr>
          <tr>
            <th scope="row">{t("settled")}</th>
            <td>{cycle.chain_position_settled_fen ?? "—"}</td>
            <td>{chain ? String(chain.settled || chain.refunded) : "—"}</td>
          </tr>
        </tbody>
      </table>
      <h3>{t("verification")}</h3>
      {busy && <Loading />}
      {outcome && (
        <div class={outcome.ok ? "banner ok" : "banner fail"} data-testid="verification-summary" data-ok={String(outcome.ok)} role="status">
          <strong>{outcome.ok ? t("verifiedAll") : t("notVerifiedAll")}</strong>
          <ul>
            <li data-testid="verified-count">
              {outcome.verifiedCount} / {outcome.results.length} {t("entriesVerified")}
            </li>
            <li>{outcome.sumMatches ? t("sumMatches") : t("sumDiffers")} ({formatFen(outcome.sumFen)})</li>
            <li>{outcome.rootFinal ? t("rootFinal") : t("rootNotFinal")}</li>
            {!outcome.statedRootMatches && <li>{t("rootMismatch")}</li>}
            <li>
              {t("verifiedAt")} {outcome.chain.block.toString()}
            </li>
          </ul>
        </div>
      )}
      <div class="toolbar">
        <button type="button" data-testid="verify-again" disabled={!entries || busy} onClick={() => entries && verify(entries)}>
          {t("verifyAgain")}
        </button>
        <button
          type="button"
          disabled={!entries}
          onClick={() => entries && saveFile(`cycle-${cycle.cycle_id}-entries.ndjson`, "application/x-ndjson", entries.text)}
        >
          {t("downloadNdjson")}
        </button>
        <button
          type="button"
          disabled={!outcome}
          onClick={() => outcome && saveFile(`cycle-${cycle.cycle_id}-entries.csv`, "text/csv", toCsv(outcome.results))}
        >
          {t("downloadCsv")}
        </button>
        <label for="verify-file">{t("verifyFile")}</label>
        <input id="verify-file" type="file" accept=".ndjson,application/x-ndjson" onChange={verifyFile} />
      </div>
      <label for="entry-search">{t("search")}</label>
      <input
        id="entry-search"
        type="search"
        value={query}
        onInput={(e) => {
          setQuery(e.currentTarget.value);
          setPage(0);
        }}
      />
      <table data-testid="entries">
        <thead>
          <tr>
            <th scope="col">{t("entryId")}</th>
            <th scope="col">{t("kind")}</th>
            <th scope="col" class="num">{t("amount")}</th>
            <th scope="col" class="num">{t("proof")}</th>
            <th scope="col">{t("result")}</th>
          </tr>
        </thead>
        <tbody>
          {shown.map(({ entry, verified, reason }) => (
            <tr key={entry.entry_id} data-testid="entry-row" data-verified={outcome ? String(verified) : "pending"}>
              <td>{entry.entry_id}</td>
              <td>{entry.kind_name}</td>
              <td class="num">{formatFen(entry.amount_fen)}</td>
              <td class="num">{entry.proof.length}</td>
              <td class={outcome ? (verified ? "ok" : "fail") : ""}>
                {!outcome ? "…" : verified ? `✓ ${t("verified")}` : `✗ ${t("notVerified")}: ${t(REASONS[reason ?? "proof"])}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager page={page} pages={pages} onPage={setPage} />
    </Section>
  );
}
