/**
 * What both stores share about migrations: a migration is a numbered SQL script, applied once, in
 * order, recorded in schema_migrations(version, applied_at). Shipped migrations are never edited;
 * a schema change is a new entry at the end of the list.
 */
import { KeystrataError } from '../errors.js';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/** The migrations of `known` not yet in `applied`, in order. */
export function pendingMigrations(known: readonly Migration[], applied: readonly number[]): Migration[] {
  known.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`store: migration list is not numbered 1..n (entry ${i} has version ${m.version})`);
  });
  const newest = Math.max(0, ...applied);
  if (newest > known.length) {
    // A newer build migrated this database. Running old code on a schema it does not know could
    // write rows the newer code misreads, so refuse rather than guess.
    throw new KeystrataError(
      'store_unavailable',
      `The database schema is at version ${newest}, newer than this keystrata build supports (${known.length}). Upgrade keystrata.`,
    );
  }
  const done = new Set(applied);
  return known.filter((m) => !done.has(m.version));
}
