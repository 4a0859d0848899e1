import type { CliIo } from './io.js';

/** Output formats of the client verbs. */
export type OutputFormat = 'json' | 'text';

export function writeJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** `label: value` lines, labels aligned. */
export function writeFields(io: CliIo, fields: readonly (readonly [string, string])[]): void {
  const width = Math.max(...fields.map(([label]) => label.length));
  io.stdout(fields.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${value}\n`).join(''));
}

/** A plain, space-aligned table with a header row (easy to read and to cut/awk). */
export function writeTable(io: CliIo, headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `${cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}\n`;
  io.stdout(line(headers) + rows.map(line).join(''));
}

/** Tells a human where the next page starts; on stderr so stdout stays one clean table. */
export function writeNextCursor(io: CliIo, nextCursor: string | null): void {
  if (nextCursor !== null) io.stderr(`more results: repeat with --cursor ${nextCursor}\n`);
}

/** An API token the server has just issued: its value is in this answer only. */
export interface IssuedTokenOutput {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: string;
  /** What the token is, e.g. `API token of client "billing"`. */
  readonly label: string;
  /** A line to add after the warning. */
  readonly after?: string;
}

/**
 * Prints a newly issued token on a line of its own (nothing else on it, so it is easy to copy)
 * between a heading and the warning that it cannot be shown again.
 */
export function writeIssuedToken(io: CliIo, issued: IssuedTokenOutput): void {
  io.stdout(
    `${issued.label} (id ${issued.tokenId}, expires ${issued.expiresAt}):\n` +
      `${issued.token}\n\n` +
      'Store this token now: it is not shown again (the server keeps only a hash of it).\n' +
      (issued.after === undefined ? '' : `${issued.after}\n`),
  );
}
