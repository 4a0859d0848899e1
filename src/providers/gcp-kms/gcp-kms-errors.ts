import { CmkProviderError, isCmkProviderError, type CmkFailureReason } from '../provider.js';

/**
 * Cloud KMS failures → CmkFailureReason.
 *
 * Over the REST transport an API error reaches us as a GaxiosError whose status is the HTTP status
 * and whose body (response data, or the message when the body was streamed) is the Google JSON
 * error `{error: {code, message, status, details}}`; the gRPC transport would give a GoogleError
 * with a numeric gRPC code. Both are read here. Key states arrive as FAILED_PRECONDITION
 * "<version> is not enabled, current state is: DISABLED." (DESTROY_SCHEDULED, DESTROYED …), the
 * message format Cloud KMS uses for every state.
 *
 * The error object itself is never attached as a cause: its request config holds the bearer token
 * and the request body holds the key being wrapped.
 */

export type KmsOperation = 'wrap' | 'unwrap' | 'describe';

const GRPC_STATUS = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const HTTP_STATUS: Readonly<Record<number, string>> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED', 500: 'INTERNAL', 501: 'UNIMPLEMENTED', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

/** Error codes of a connection that never produced an answer. */
const NETWORK_CODES = /^(E[A-Z]+|UND_ERR_[A-Z_]+|ERR_TLS_[A-Z_]+|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_[A-Z_]+)$/;

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function json(text: unknown): unknown {
  if (typeof text !== 'string' || !text.trimStart().startsWith('{')) return typeof text === 'object' ? text : null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

const clip = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

/** The canonical status and message Google answered with, if it answered. */
function googleAnswer(error: unknown): { status: string; message: string } | null {
  const body = json(field(field(error, 'response'), 'data')) ?? json(field(error, 'message'));
  const apiError = field(body, 'error');
  const http = field(error, 'status');
  if (typeof apiError === 'object' && apiError !== null) {
    const status = field(apiError, 'status');
    const code = field(apiError, 'code');
    const message = field(apiError, 'message');
    return {
      status: typeof status === 'string' ? status : (HTTP_STATUS[typeof code === 'number' ? code : Number(http)] ?? 'UNKNOWN'),
      message: typeof message === 'string' ? message : '',
    };
  }
  // Google's OAuth endpoints (ADC with user or metadata credentials): {error: "invalid_grant", …}.
  if (typeof apiError === 'string') {
    const description = field(body, 'error_description');
    return { status: 'UNAUTHENTICATED', message: `${apiError}${typeof description === 'string' ? `: ${description}` : ''}` };
  }
  if (typeof http === 'number') return { status: HTTP_STATUS[http] ?? (http >= 500 ? 'UNAVAILABLE' : 'FAILED_PRECONDITION'), message: `HTTP ${http}` };
  const code = field(error, 'code');
  if (error instanceof Error && error.name === 'GoogleError' && typeof code === 'number') return { status: GRPC_STATUS[code] ?? 'UNKNOWN', message: error.message };
  return null;
}

/** A network-level code (ECONNREFUSED, AbortError …) anywhere in the cause chain. */
function transportCode(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; e = field(e, 'cause') ?? field(e, 'error'), depth++) {
    const code = field(e, 'code');
    const name = field(e, 'name');
    if (name === 'AbortError' || code === 'AbortError' || code === 'ABORT_ERR') return 'AbortError';
    if (typeof code === 'string' && NETWORK_CODES.test(code)) return code;
  }
  return null;
}

/** The reason of a FAILED_PRECONDITION: which state the key version is in. */
function stateReason(message: string): CmkFailureReason {
  const state = /current state is:? ([A-Z_]+)/.exec(message)?.[1];
  if (state === 'DESTROY_SCHEDULED') return 'key_pending_deletion';
  if (state === 'DESTROYED' || state === 'PENDING_EXTERNAL_DESTRUCTION' || state === 'EXTERNAL_DESTRUCTION_FAILED') return 'key_destroyed';
  // DISABLED, and versions that cannot be used yet or at all (PENDING_GENERATION, IMPORT_FAILED,
  // no primary version): the customer has to act at Cloud KMS.
  return 'key_disabled';
}

function reasonFor(status: string, message: string, operation: KmsOperation): CmkFailureReason {
  switch (status) {
    case 'UNAUTHENTICATED':
      return 'credentials_rejected';
    case 'PERMISSION_DENIED':
      return 'permission_denied';
    case 'NOT_FOUND':
      return 'key_not_found';
    case 'FAILED_PRECONDITION':
      return stateReason(message);
    case 'INVALID_ARGUMENT':
      // A checksum mismatch is damage in transit, not a bad ciphertext: retry, do not raise an
      // integrity alarm. Otherwise, on decrypt: wrong key, altered ciphertext or other AAD.
      if (/checksum|crc32c/i.test(message)) return 'unreachable';
      return operation === 'unwrap' ? 'invalid_ciphertext' : 'key_not_found';
    case 'RESOURCE_EXHAUSTED':
      return 'throttled';
    case 'DEADLINE_EXCEEDED':
    case 'CANCELLED':
      return 'timeout';
    default:
      return 'unreachable';
  }
}

/** The CmkProviderError for anything a Cloud KMS call threw. */
export function kmsFailure(error: unknown, operation: KmsOperation): CmkProviderError {
  if (isCmkProviderError(error)) return error;
  const answer = googleAnswer(error);
  if (answer) {
    return new CmkProviderError(reasonFor(answer.status, answer.message, operation), `Cloud KMS ${operation}: ${answer.status}: ${clip(answer.message)}`);
  }
  const code = transportCode(error);
  if (code === 'AbortError') return new CmkProviderError('timeout', `Cloud KMS ${operation} abandoned (deadline)`);
  if (code) return new CmkProviderError('unreachable', `Cloud KMS ${operation}: cannot connect (${code})`);
  const message = error instanceof Error ? error.message : '';
  if (/default credentials/i.test(message)) {
    return new CmkProviderError('credentials_rejected', `Cloud KMS ${operation}: no credentials in the config and no application default credentials on this host`);
  }
  return new CmkProviderError('unreachable', `Cloud KMS ${operation} failed (${error instanceof Error ? error.name : typeof error})`);
}
