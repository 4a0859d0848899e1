/**
 * Codes the SDK itself produces, besides the server's own codes (docs/errors.md):
 * - `network_error`: no HTTP response was received (connection refused, DNS, TLS, aborted);
 * - `invalid_response`: the server answered, but not with the JSON this SDK expects;
 * - `invalid_request`: the call was refused before sending (e.g. an empty path segment).
 */
export type ClientErrorCode = 'network_error' | 'invalid_response' | 'invalid_request';

/** Fields of a {@link KeystrataApiError}. */
export interface KeystrataApiErrorInit {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly requestId?: string | undefined;
  readonly field?: string | undefined;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  readonly retryAfterSeconds?: number | undefined;
  readonly cause?: unknown;
}

/**
 * Every failure of a {@link KeystrataClient} call.
 *
 * `status` is the HTTP status, or 0 when no response was received (`network_error`) or the call
 * was refused before sending. `code` is the server's stable error code (e.g. `version_conflict`)
 * or one of {@link ClientErrorCode}. Messages never contain the API token.
 *
 * @example
 * ```ts
 * try {
 *   await client.updateObject(ws, 'production', id, { value, expectedVersion: 3 });
 * } catch (err) {
 *   if (err instanceof KeystrataApiError && err.code === 'version_conflict') {
 *     console.log('now at version', err.details?.currentVersion);
 *   } else throw err;
 * }
 * ```
 *
 * @example A rate-limited call (`429 rate_limited`) says when to try again:
 * ```ts
 * } catch (err) {
 *   if (!(err instanceof KeystrataApiError) || err.code !== 'rate_limited') throw err;
 *   const seconds = err.retryAfterSeconds ?? 1;
 *   await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
 * }
 * ```
 */
export class KeystrataApiError extends Error {
  /** HTTP status, or 0 when there was no response. */
  readonly status: number;
  /** Stable error code. */
  readonly code: string;
  /** The server's request id, to quote when reporting a problem; absent without a response. */
  readonly requestId: string | undefined;
  /** The request field at fault, for `invalid_request`. */
  readonly field: string | undefined;
  /** Extra, non-secret facts (e.g. `currentVersion` on a `version_conflict`). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /**
   * Whole seconds to wait before trying again, from the answer's `Retry-After` header (sent with
   * `429 rate_limited`, and possibly with a 503); undefined when the answer had none.
   */
  readonly retryAfterSeconds: number | undefined;

  constructor(init: KeystrataApiErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'KeystrataApiError';
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.field = init.field;
    this.details = init.details;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/** True when `value` is a {@link KeystrataApiError}. */
export function isKeystrataApiError(value: unknown): value is KeystrataApiError {
  return value instanceof KeystrataApiError;
}
