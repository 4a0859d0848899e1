import { KeystrataError, isKeystrataError } from '../errors.js';
import { isCmkProviderError, type CmkFailureReason } from '../providers/provider.js';
import type { CmkRecord } from '../store/store.js';

/**
 * How a provider failure reaches an API caller while USING a CMK (loading an environment key):
 * - the key was destroyed at the KMS → key_destroyed (410): the data under it is lost, say so;
 * - the ciphertext does not open → integrity_check_failed (500): the stored EK row was altered;
 * - anything else (disabled, pending deletion, credentials, throttled, timeout, unreachable …) →
 *   key_unavailable (503, retryable) with the reason, so the customer knows what to fix.
 */
export function providerFailure(error: unknown, cmk: Pick<CmkRecord, 'id' | 'provider'>): KeystrataError {
  if (isKeystrataError(error)) return error;
  if (!isCmkProviderError(error)) {
    return new KeystrataError('key_unavailable', `The environment's CMK (${cmk.provider}) could not be used; retry later.`, {
      details: { reason: 'provider_error' },
      logDetail: `CMK ${cmk.id}: unexpected provider failure`,
      cause: error,
    });
  }
  const logDetail = `CMK ${cmk.id} (${cmk.provider}): ${error.reason}: ${error.message}`;
  if (error.reason === 'key_destroyed') {
    return new KeystrataError(
      'key_destroyed',
      `The environment's CMK was destroyed at its key store (${cmk.provider}); data encrypted under it is lost.`,
      { logDetail, cause: error },
    );
  }
  if (error.reason === 'invalid_ciphertext') {
    return new KeystrataError('integrity_check_failed', 'A stored key failed its integrity check.', { logDetail, cause: error });
  }
  return new KeystrataError('key_unavailable', `The environment's CMK is unavailable: ${REASON_TEXT[error.reason]}. Retry later.`, {
    details: { reason: error.reason },
    logDetail,
    cause: error,
  });
}

const REASON_TEXT: Record<CmkFailureReason, string> = {
  credentials_rejected: 'the key store rejected the credentials',
  permission_denied: 'the credentials may not use this key',
  key_disabled: 'the key is disabled at its key store',
  key_not_found: 'the key store does not know the key',
  key_pending_deletion: 'the key is scheduled for deletion at its key store',
  key_destroyed: 'the key was destroyed',
  key_expired: 'the key has expired at its key store',
  throttled: 'the key store is throttling requests',
  timeout: 'the key store did not answer in time',
  unreachable: 'the key store cannot be reached',
  invalid_ciphertext: 'the wrapped key does not match',
};

export function reasonText(reason: CmkFailureReason): string {
  return REASON_TEXT[reason];
}
