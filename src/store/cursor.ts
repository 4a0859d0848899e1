/**
 * Opaque pagination cursors: base64url of a JSON array holding the last row's sort key. Callers
 * (and API clients) must treat them as opaque; the store validates them on the way back in because
 * they arrive from the network.
 */
import { KeystrataError } from '../errors.js';

function invalidCursor(): KeystrataError {
  return new KeystrataError('invalid_request', 'The pagination cursor is not valid.', { field: 'cursor' });
}

function decode(cursor: string): unknown[] {
  // Bound the work done on attacker-supplied input before parsing it.
  if (cursor.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(value)) throw invalidCursor();
  return value;
}

// Text a database can compare: no U+0000 (PostgreSQL text cannot hold it) and no lone surrogates
// (not valid UTF-8). Both are refused as an invalid cursor rather than reaching the database.
const UNSTORABLE = /[\u0000]|\p{Cs}/u;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The largest time a JavaScript Date (and so a cursor timestamp) can hold. */
const MAX_DATE_MS = 8.64e15;

function encode(key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Workspaces are listed by (createdAt, id): the id breaks ties between equal timestamps. */
export interface WorkspaceCursor {
  readonly createdAtMs: number;
  readonly id: string;
}

export function encodeWorkspaceCursor(createdAt: Date, id: string): string {
  return encode([createdAt.getTime(), id]);
}

export function decodeWorkspaceCursor(cursor: string): WorkspaceCursor {
  const [createdAtMs, id, ...rest] = decode(cursor);
  if (
    typeof createdAtMs !== 'number' ||
    !Number.isSafeInteger(createdAtMs) ||
    Math.abs(createdAtMs) > MAX_DATE_MS ||
    typeof id !== 'string' ||
    !UUID.test(id) ||
    rest.length > 0
  ) {
    throw invalidCursor();
  }
  return { createdAtMs, id };
}

/**
 * Objects and clients are listed by name, which is unique within their environment or workspace.
 * The cursor holds the last name of the page; a client cursor is an object cursor and vice versa,
 * which is harmless: either only says where in name order the next page starts.
 */
export function encodeNameCursor(name: string): string {
  return encode([name]);
}

export function decodeNameCursor(cursor: string): string {
  const [name, ...rest] = decode(cursor);
  if (typeof name !== 'string' || UNSTORABLE.test(name) || rest.length > 0) throw invalidCursor();
  return name;
}

/**
 * Splits the `limit + 1` rows a page query fetched into the page and the cursor of the next one.
 * Fetching one extra row is what lets the last page say nextCursor: null even when it is full.
 */
export function toPage<T>(rows: readonly T[], limit: number, cursorOf: (last: T) => string): { items: T[]; nextCursor: string | null } {
  if (rows.length <= limit) return { items: [...rows], nextCursor: null };
  const items = rows.slice(0, limit);
  return { items, nextCursor: cursorOf(items[items.length - 1]!) };
}
