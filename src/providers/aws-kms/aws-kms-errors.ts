import { CmkProviderError, isCmkProviderError, type CmkFailureReason } from '../provider.js';

/**
 * AWS KMS errors → CmkFailureReason. The client throws service errors with the wire `__type` as
 * `name` (modelled ones as classes; AccessDeniedException, ThrottlingException and the
 * authentication errors of the AWS front end are not modelled in the KMS client, so names are the
 * one reliable key), and network failures as plain errors with a Node `code`.
 *
 * Messages name the operation, the AWS error name and the key as configured; the service's own
 * message is kept (it names the principal and action on AccessDenied, which is what an operator
 * needs) but never the request: AWS never echoes credentials, and we never put them in.
 */

/** A KMS call that failed, as the mapping sees it. */
export interface KmsFailure {
  readonly name: string;
  readonly message: string;
  readonly httpStatus: number | undefined;
}

export function kmsFailureOf(error: unknown): KmsFailure {
  if (!(error instanceof Error)) return { name: typeof error, message: '', httpStatus: undefined };
  const metadata = (error as { $metadata?: { httpStatusCode?: number } }).$metadata;
  const code = (error as { code?: unknown }).code;
  return { name: typeof code === 'string' && error.name === 'Error' ? code : error.name, message: error.message, httpStatus: metadata?.httpStatusCode };
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
};

const MAX_SERVICE_MESSAGE = 300;

export function describeFailure(operation: string, keyId: string, failure: KmsFailure): string {
  const said = failure.message.trim().slice(0, MAX_SERVICE_MESSAGE);
  return `AWS KMS ${operation} on ${keyId} failed: ${failure.name}${said ? ` (${said})` : ''}`;
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
export function mapKmsError(error: unknown, operation: string, keyId: string): CmkProviderError {
  if (isCmkProviderError(error)) return error;
  const failure = kmsFailureOf(error);
  const reason = directReason(failure) ?? (failure.name === 'NotFoundException' ? 'key_not_found' : 'key_disabled');
  return new CmkProviderError(reason, describeFailure(operation, keyId, failure));
}
