// The product factory of the operations view: the published versions, a what-if quote of a
// sample purchase re-priced as the inputs change (the node's all-in cost cap checked on each
// quote), and publishing a new version from an edited copy of one (the node refuses one above
// the cap with a problem naming the field).
import { useEffect, useState } from "preact/hooks";
import { getJson, postJson } from "../api";
import { formatBps, formatFen } from "../format";
import { t } from "../i18n";
import { ErrorLine, Section } from "../ui";

interface Product {
  product_code: string;
  version: number;
  product_type: string;
  terms_hash: string;
  terms: Record<string, unknown>;
}

interface Quote {
  total_interest_fen: number;
  total_fees_fen: number;
  total_repayment_fen: number;
  annual_cost_bps: number;
  cost_cap_bps: number;
  annualization: string;
  within_cost_cap: boolean;
  installments: { number: number; due_date: string; principal_fen: number; interest_fen: number; fee_fen: number; payment_fen: number }[];
}

const QUOTE_DELAY_MS = 250;

export function ProductFactory(props: { admin: boolean }) {
  const [products, setProducts] = useState<Product[]>([]);
  const [selected, setSelected] = useState("");
  const [amount, setAmount] = useState("12000.00");
  const [tenor, setTenor] = useState("12");
  const [start, setStart] = useState(new Date().toISOString().slice(0, 10));
  const [quote, setQuote] = useState<Quote | null>(null);
  const [quoteError, setQuoteError] = useState<unknown>(null);
  const [draft, setDraft] = useState("");
  const [published, setPublished] = useState<string | null>(null);
  const [publishError, setPublishError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    getJson<Product[]>("/v1/products")
      .then((list) => {
        setProducts(list);
        if (list.length && !selected) setSelected(`${list[list.length - 1].product_code}/${list[list.length - 1].version}`);
      })
      .catch(setQuoteError);
  }, [reload]);

  const product = products.find((item) => `${item.product_code}/${item.version}` === selected) ?? null;

  useEffect(() => {
    if (!product) return;
    setDraft(JSON.stringify({ ...product.terms, version: product.version + 1 }, null, 2));
  }, [selected, products.length]);

  useEffect(() => {
    if (!product) return;
    const fen = toFen(amount);
    if (fen === null) return setQuoteError(new Error(`amount: ${amount}`));
    const timer = setTimeout(() => {
      postJson<Quote>(`/v1/products/${product.product_code}/versions/${product.version}/what-if`, {
        amount_fen: fen,
        tenor_months: Number(tenor),
        start_date: start,
      })
        .then((answer) => {
          setQuote(answer);
          setQuoteError(null);
        })
        .catch((failure) => {
          setQuote(null);
          setQuoteError(failure);
        });
    }, QUOTE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [selected, amount, tenor, start, products.length]);

  const publish = async () => {
    setPublishError(null);
    setPublished(null);
    try {
      const answer = await postJson<Product>("/v1/products", JSON.parse(draft));
      setPublished(`${answer.product_code} v${answer.version} ${answer.terms_hash.slice(0, 18)}…`);
      setReload((n) => n + 1);
    } catch (failure) {
      setPublishError(failure);
    }
  };

  return (
    <Section title={t("productFactory")} id="ops-products">
      <div class="toolbar">
        <label for="product-version">{t("product")}</label>
        <select id="product-version" value={selected} onChange={(e) => setSelected(e.currentTarget.value)}>
          {products.map((item) => (
            <option key={`${item.product_code}/${item.version}`} value={`${item.product_code}/${item.version}`}>
              {item.product_code} v{item.version} ({item.product_type})
            </option>
          ))}
        </select>
        <label for="whatif-amount">{t("amount")}</label>
        <input id="whatif-amount" inputMode="decimal" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={10} />
        <label for="whatif-tenor">{t("tenor")}</label>
        <input id="whatif-tenor" type="number" min={1} max={60} value={tenor} onInput={(e) => setTenor(e.currentTarget.value)} />
        <label for="whatif-start">{t("startDate")}</label>
        <input id="whatif-start" type="date" value={start} onInput={(e) => setStart(e.currentTarget.value)} />
      </div>
      <ErrorLine error={quoteError} />
      {quote && (
        <div class={quote.within_cost_cap ? "banner ok" : "banner fail"} data-testid="whatif-quote" data-within={String(quote.within_cost_cap)} role="status">
          <strong>{quote.within_cost_cap ? t("withinCap") : t("aboveCap")}</strong>{" "}
          {t("annualCost")} ({quote.annualization}) {formatBps(quote.annual_cost_bps)} / {t("cap")} {formatBps(quote.cost_cap_bps)};{" "}
          {t("interest")} {formatFen(quote.total_interest_fen)}, {t("fees")} {formatFen(quote.total_fees_fen)}, {t("totalRepayment")}{" "}
          {formatFen(quote.total_repayment_fen)}
        </div>
      )}
      {props.admin && (
        <div>
          <h3>{t("newVersion")}</h3>
          <label for="product-draft">{t("termsJson")}</label>
          <textarea id="product-draft" rows={10} cols={90} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />
          <div>
            <button type="button" onClick={publish} data-testid="publish-product">
              {t("publish")}
            </button>
          </div>
          <ErrorLine error={publishError} />
          {published && (
            <p class="banner ok" role="status">
              {t("publishedVersion")}: {published}
            </p>
          )}
        </div>
      )}
    </Section>
  );
}

/** "12,000.50" → 1200050 fen, exactly (no float); null when not an amount. */
export function toFen(text: string): number | null {
  const match = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(text.replace(/,/g, "").trim());
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? "0").padEnd(2, "0"));
}
