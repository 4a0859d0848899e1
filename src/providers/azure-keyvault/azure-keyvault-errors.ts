import { CmkProviderError, type CmkFailureReason } from '../provider.js';

/**
 * Maps what the Azure clients throw to CmkFailureReason.
 *
 * Two families reach us:
 * - the Key Vault client's RestError: `statusCode` plus `details.error {code, message, innerError}`
 *   parsed from Key Vault's body (403 Forbidden with innererror AccessDenied / ForbiddenByRbac =
 *   no permission, innererror KeyDisabled = disabled key; 404 KeyNotFound; 400 BadParameter;
 *   429 Throttled), or no status and a Node `code` (ECONNREFUSED, ENOTFOUND, a TLS error) when
 *   no answer came;
 * - @azure/identity's errors while getting a token: AuthenticationRequiredError /
 *   AuthenticationError carrying Entra ID's answer ("invalid_client … AADSTS7000215 …"), or
 *   CredentialUnavailableError (a tenant mismatch with the vault's challenge, or the authority's
 *   metadata could not be fetched: `endpoints_resolution_error`).
 *
 * The original error is never attached as `cause`: a RestError carries the request, and the body
 * of a wrapkey request is the key being wrapped. Messages keep only the service's own text, with
 * the client secret scrubbed out in case a service ever echoes it.
 */

interface ServiceError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly statusCode?: unknown;
  readonly code?: unknown;
  readonly details?: { readonly error?: { readonly code?: unknown; readonly message?: unknown; readonly innerError?: { readonly code?: unknown } } };
}

const NETWORK = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|socket hang up|network_error|endpoints_resolution_error)\b/i;
const IDENTITY_ERRORS = new Set(['AuthenticationRequiredError', 'AuthenticationError', 'AggregateAuthenticationError', 'CredentialUnavailableError']);

/** Removes the secret from service text, and keeps it short (logs, API details). */
export function scrub(text: string, secret: string): string {
  const cleaned = secret.length > 0 ? text.split(secret).join('[redacted]') : text;
  return cleaned.length > 400 ? `${cleaned.slice(0, 400)}…` : cleaned;
}

function fail(reason: CmkFailureReason, message: string, secret: string): CmkProviderError {
  return new CmkProviderError(reason, scrub(message, secret));
}

export function azureFailure(error: unknown, operation: string, secret: string): CmkProviderError {
  if (error instanceof CmkProviderError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as ServiceError;
  const name = typeof e.name === 'string' ? e.name : typeof error;
  const message = typeof e.message === 'string' ? e.message : '';
  if (name === 'AbortError') return fail('timeout', `Azure Key Vault ${operation} was abandoned at the deadline`, secret);

  if (IDENTITY_ERRORS.has(name)) {
    if (NETWORK.test(message)) return fail('unreachable', `cannot reach Entra ID to get a token (${message})`, secret);
    // Entra ID's answer says why: AADSTS7000215 wrong secret, AADSTS7000222 expired secret,
    // AADSTS700016 unknown app; or the vault's tenant is not the configured tenantId.
    return fail('credentials_rejected', `Entra ID refused the credentials: ${message}`, secret);
  }

  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const body = e.details?.error;
  const code = typeof body?.code === 'string' ? body.code : typeof e.code === 'string' ? e.code : 'unknown';
  const inner = typeof body?.innerError?.code === 'string' ? body.innerError.code : '';
  const text = typeof body?.message === 'string' ? body.message : message;
  const said = `Azure Key Vault ${operation}: ${status ?? 'no answer'} ${code}${inner ? `/${inner}` : ''}: ${text}`;

  if (status === undefined) return fail('unreachable', said, secret);
  if (status === 401) return fail('credentials_rejected', said, secret);
  if (status === 403) {
    if (inner === 'KeyDisabled' || /disabled/i.test(text)) return fail('key_disabled', said, secret);
    if (/expired|not yet valid/i.test(text)) return fail('key_expired', said, secret);
    return fail('permission_denied', said, secret);
  }
  if (status === 404) return fail('key_not_found', said, secret);
  if (status === 429) return fail('throttled', said, secret);
  // An unwrap the service rejects as malformed: the ciphertext does not belong to this key.
  if (status === 400 && operation === 'unwrap') return fail('invalid_ciphertext', said, secret);
  if (status === 400) return fail('permission_denied', `${said} (the key cannot be used for this operation)`, secret);
  return fail('unreachable', said, secret);
}
