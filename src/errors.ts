/**
 * One error base with stable string codes, and one table mapping each code to its HTTP status.
 *
 * Every failure a caller can see is a KeystrataError with a code from ERROR_STATUS. Messages are
 * written for humans and MUST NOT contain key material, plaintext, tokens or ciphertext: they are
 * returned to API callers and written to logs. Detail that helps an operator but could help an
 * attacker (why a decryption failed, for instance) goes into `logDetail`, which is only logged.
 */

export const ERROR_STATUS = {
  invalid_request: 400,
  decryption_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  ip_not_allowed: 403,
  workspace_not_found: 404,
  environment_not_found: 404,
  object_not_found: 404,
  client_not_found: 404,
  object_version_not_found: 404,
  key_not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  version_conflict: 409,
  key_state_conflict: 409,
  repack_in_progress: 409,
  key_destroyed: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  key_disabled: 423,
  cmk_credentials_rejected: 422,
  cmk_permission_denied: 422,
  cmk_key_disabled: 422,
  cmk_key_not_found: 422,
  cmk_key_pending_deletion: 422,
  cmk_key_expired: 422,
  cmk_test_failed: 422,
  rate_limited: 429,
  cmk_replace_too_soon: 429,
  internal_error: 500,
  integrity_check_failed: 500,
  key_unavailable: 503,
  store_unavailable: 503,
  shutting_down: 503,
  cmk_unreachable: 503,
  cmk_throttled: 503,
  root_key_mismatch: 500,
  configuration_invalid: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface KeystrataErrorOptions {
  /** The request field at fault, for invalid_request (e.g. "scope.id"). */
  readonly field?: string;
  /** Extra, non-secret facts returned to the caller (e.g. the current version on a conflict). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Operator-only detail: logged, never returned. Still no secrets. */
  readonly logDetail?: string;
  readonly cause?: unknown;
}

export class KeystrataError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly logDetail: string | undefined;

  constructor(code: ErrorCode, message: string, options: KeystrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeystrataError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.field = options.field;
    this.details = options.details;
    this.logDetail = options.logDetail;
  }
}

export function isKeystrataError(value: unknown): value is KeystrataError {
  return value instanceof KeystrataError;
}

/**
 * The one error every decryption failure collapses into, whatever went wrong (tampering, wrong
 * tenant, wrong scope, wrong context, truncated input, unknown key id). Distinct messages would
 * give an attacker an oracle, so the caller always sees the same code and message; the reason is
 * kept in `logDetail` for the operator.
 */
export function decryptionFailed(logDetail: string, cause?: unknown): KeystrataError {
  return new KeystrataError('decryption_failed', 'The ciphertext could not be decrypted.', {
    logDetail,
    cause,
  });
}

export function invalidRequest(field: string, message: string): KeystrataError {
  return new KeystrataError('invalid_request', message, { field });
}
