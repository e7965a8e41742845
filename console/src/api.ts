// The console's only back end: the node's /v1 API, with the API key the user signed in with.
// The key lives in sessionStorage only (gone when the tab closes), never in localStorage or a cookie.

const KEY_ITEM = "creditnet.apiKey";

export function getKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

/** A problem+json answer (RFC 9457) or a network failure, with the field it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

/** 16 random bytes as hex: an Idempotency-Key (getRandomValues works outside secure contexts too). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = getKey();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError(0, "unreachable", "the node did not answer");
  }
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = response.statusText;
    let field: string | null = null;
    try {
      const problem = await response.json();
      code = problem.code ?? code;
      message = problem.detail ?? problem.title ?? message;
      field = problem.field ?? null;
    } catch {
      // not problem+json: keep the status line
    }
    throw new ApiError(response.status, code, message, field);
  }
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await send(path)).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return await (await send(path)).text();
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const response = await send(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": newIdempotencyKey() },
    body: JSON.stringify(body ?? {}),
  });
  return (await response.json()) as T;
}

export interface Session {
  key_id: string;
  role: "lender_admin" | "lender_app" | "partner" | "auditor";
  partner_id: number | null;
  chain_id: number | null;
  rpc_url_suggested: string | null;
}
