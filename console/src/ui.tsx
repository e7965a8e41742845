// Small pieces every view uses: sections, errors, a loading line, a pager.
import type { ComponentChildren } from "preact";
import { ApiError } from "./api";
import { t } from "./i18n";

export function Section(props: { title: string; id: string; children: ComponentChildren }) {
  return (
    <section aria-labelledby={props.id + "-title"} data-testid={props.id}>
      <h2 id={props.id + "-title"}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function ErrorLine(props: { error: unknown }) {
  if (!props.error) return null;
  const error = props.error;
  const text =
    error instanceof ApiError
      ? `${error.status} ${error.code}${error.field ? ` (${error.field})` : ""}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <p class="error" role="alert">
      {t("error")}: {text}
    </p>
  );
}

export function Loading() {
  return <p aria-live="polite">{t("loading")}</p>;
}

export function Pager(props: { page: number; pages: number; onPage: (page: number) => void }) {
  return (
    <nav class="pager" aria-label={t("page")}>
      <button type="button" disabled={props.page <= 0} onClick={() => props.onPage(props.page - 1)}>
        {t("previous")}
      </button>
      <span>
        {t("page")} {props.page + 1} {t("of")} {Math.max(props.pages, 1)}
      </span>
      <button type="button" disabled={props.page + 1 >= props.pages} onClick={() => props.onPage(props.page + 1)}>
        {t("next")}
      </button>
    </nav>
  );
}
