import pg from 'pg';
import { KeystrataError } from '../../errors.js';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);
// SQLSTATE class 08 (connection exception), admin/crash shutdown, "cannot connect now", too many connections.
const SERVER_CODES = /^(08...|57P01|57P02|57P03|53300)$/;

/**
 * True for failures that mean "the database cannot be reached right now" — as opposed to a
 * statement the database refused, which is a bug or a conflict and must not be reported as an
 * outage.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return error.code !== undefined && SERVER_CODES.test(error.code);
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(error.message);
}

/** Rethrow connection failures as store_unavailable (503); anything else unchanged. */
export function asStoreError(error: unknown): unknown {
  if (!isConnectionFailure(error)) return error;
  return new KeystrataError('store_unavailable', 'The database cannot be reached; try again shortly.', {
    cause: error,
    logDetail: error instanceof Error ? error.message : String(error),
  });
}
