import { CmkProviderError, isCmkProviderError, type CmkFailureReason } from '../provider.js';

/**
 * AWS KMS errors → CmkFailureReason. The client throws service errors with the wire `__type` as
 * `name` (modelled ones as classes; AccessDeniedException, ThrottlingException and the
 * authentication errors of the AWS front end are not modelled in the KMS client, so names are the
 * one reliable key), and network failures as plain errors with a Node `code`.
 *
 * Messages name the operation, the AWS error name and the key as configured, plus the first
 * paragraph of the service's own message (it names the principal and action on AccessDenied, which
 * is what an operator needs). Signature errors of some AWS front ends append the canonical request
 * in later paragraphs — signed header values, x-amz-security-token among them — so only the first
 * paragraph is kept, and any configured secret still in it is masked. The client's error object is
 * never attached as `cause`: it carries the raw HTTP exchange, session token header included.
 */

/** A KMS call that failed, as the mapping sees it. */
export interface KmsFailure {
  readonly name: string;
  readonly message: string;
}

const MAX_SERVICE_MESSAGE = 300;

/** `secrets`: the configured secret values, masked should the service message ever contain one. */
export function kmsFailureOf(error: unknown, secrets: readonly string[]): KmsFailure {
  if (!(error instanceof Error)) return { name: typeof error, message: '' };
  const fromService = (error as { $fault?: unknown }).$fault !== undefined;
  const code = (error as { code?: unknown }).code;
  // Not an answer of the service: the HTTP handler renames ECONNRESET/EPIPE/ETIMEDOUT to
  // TimeoutError (for its retry logic); the Node code says what happened — a dropped connection is
  // unreachable, not slow.
  const name = !fromService && typeof code === 'string' ? code : error.name;
  // The client fills in "UnknownError" when the service sent no message (InvalidCiphertextException).
  let message = error.message === 'UnknownError' ? '' : (error.message.split(/\n\s*\n/)[0] ?? '').trim().slice(0, MAX_SERVICE_MESSAGE);
  for (const secret of secrets) if (secret.length > 0) message = message.split(secret).join('[redacted]');
  return { name, message };
}

const CREDENTIAL_ERRORS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  // From the SDK itself: the default credential chain found nothing usable.
  'CredentialsProviderError',
]);

/** Reasons that need no further question to KMS. KMSInvalidStateException and NotFoundException do: see the provider. */
const DIRECT: Readonly<Record<string, CmkFailureReason>> = {
  AccessDeniedException: 'permission_denied',
  DisabledException: 'key_disabled',
  ThrottlingException: 'throttled',
  InvalidCiphertextException: 'invalid_ciphertext',
  IncorrectKeyException: 'invalid_ciphertext',
  // A key of the wrong kind (asymmetric, HMAC) or a malformed ARN: the config names the wrong thing.
  InvalidKeyUsageException: 'key_not_found',
  InvalidArnException: 'key_not_found',
  DependencyTimeoutException: 'timeout',
  KeyUnavailableException: 'unreachable',
  KMSInternalException: 'unreachable',
  CustomKeyStoreInvalidStateException: 'unreachable',
  AbortError: 'timeout',
  TimeoutError: 'timeout',
  ETIMEDOUT: 'timeout',
};

export function describeFailure(operation: string, keyId: string, failure: KmsFailure): string {
  return `AWS KMS ${operation} on ${keyId} failed: ${failure.name}${failure.message ? ` (${failure.message})` : ''}`;
}

/** The reason of a failure that needs no look-up, or undefined (KMSInvalidStateException, NotFoundException). */
export function directReason(failure: KmsFailure): CmkFailureReason | undefined {
  if (CREDENTIAL_ERRORS.has(failure.name)) return 'credentials_rejected';
  const direct = DIRECT[failure.name];
  if (direct) return direct;
  if (failure.name === 'KMSInvalidStateException' || failure.name === 'NotFoundException') return undefined;
  // Anything else — connection refused, DNS, TLS, a 5xx, an error this code does not know — means
  // the key could not be used for a reason on the way to it, not a state of the key.
  return 'unreachable';
}

/** A CmkProviderError for a failure with a direct reason (callers handle the other two first). */
export function mapKmsError(error: unknown, operation: string, keyId: string, secrets: readonly string[]): CmkProviderError {
  if (isCmkProviderError(error)) return error;
  const failure = kmsFailureOf(error, secrets);
  const reason = directReason(failure) ?? (failure.name === 'NotFoundException' ? 'key_not_found' : 'key_disabled');
  return new CmkProviderError(reason, describeFailure(operation, keyId, failure));
}
