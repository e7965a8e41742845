// Money is integer fen everywhere; shown as yuan with two decimals, computed on integers (no float).

export function formatFen(fen: number | bigint): string {
  const value = BigInt(fen);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const yuan = (abs / 100n).toLocaleString("en-US");
  const cents = (abs % 100n).toString().padStart(2, "0");
  return `${negative ? "-" : ""}${yuan}.${cents}`;
}

export function formatBps(bps: number): string {
  return `${Math.trunc(bps / 100)}.${String(Math.abs(bps % 100)).padStart(2, "0")} %`;
}

export function download(name: string, type: string, content: string): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
