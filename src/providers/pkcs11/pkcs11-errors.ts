import { CmkProviderError, isCmkProviderError, type CmkFailureReason } from '../provider.js';
import { CryptokiError } from './cryptoki-host.js';

/**
 * PKCS#11 return values → the reasons keystrata acts on. Messages carry the CKR name and the
 * token/key labels (not secrets), never the PIN.
 */

/** The PIN itself is wrong: keystrata never sends it again (tokens lock after a few wrong PINs). */
export const PIN_REFUSED: ReadonlySet<string> = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

/** The PIN may be right but cannot be used now (locked by wrong tries, expired, never set). */
const PIN_UNUSABLE: ReadonlySet<string> = new Set(['CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_USER_PIN_NOT_INITIALIZED']);

/**
 * The session (or the login it carried) is gone: the module was reset, the token removed and put
 * back, another application of ours logged out. Worth one retry on a fresh session.
 */
export const SESSION_LOST: ReadonlySet<string> = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  // Only when an abandoned operation was left on the session; closing the session ends it.
  'CKR_OPERATION_ACTIVE',
]);

/**
 * What a failed AES-GCM decryption looks like. The standard says CKR_ENCRYPTED_DATA_INVALID;
 * SoftHSM2 answers a wrong tag with CKR_GENERAL_ERROR. During C_Decrypt only, both mean "this
 * ciphertext and AAD do not open under this key".
 */
const DECRYPT_REFUSED: ReadonlySet<string> = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR']);

function reasonOf(ckr: string, decrypting: boolean): CmkFailureReason {
  if (PIN_REFUSED.has(ckr) || PIN_UNUSABLE.has(ckr)) return 'credentials_rejected';
  if (decrypting && DECRYPT_REFUSED.has(ckr)) return 'invalid_ciphertext';
  switch (ckr) {
    case 'CKR_KEY_FUNCTION_NOT_PERMITTED':
      // CKA_ENCRYPT / CKA_DECRYPT turned off: the token's way of disabling a key for this use.
      return 'key_disabled';
    case 'CKR_KEY_HANDLE_INVALID':
    case 'CKR_OBJECT_HANDLE_INVALID':
      // Found, then gone before use: destroyed under our feet.
      return 'key_not_found';
    case 'CKR_MECHANISM_INVALID':
    case 'CKR_MECHANISM_PARAM_INVALID':
    case 'CKR_KEY_TYPE_INCONSISTENT':
    case 'CKR_KEY_SIZE_RANGE':
      // The token will not do AES-GCM with a caller-supplied IV with this key (policy, FIPS mode).
      return 'permission_denied';
    case 'CKR_SESSION_COUNT':
      return 'throttled';
    default:
      // Device errors, a token that went away, a module that cannot be loaded.
      return 'unreachable';
  }
}

/** The CmkProviderError for a failure of `operation` (e.g. 'wrap with key "cmk" on token "t"'). */
export function providerErrorOf(error: unknown, operation: string, decrypting = false): CmkProviderError {
  if (isCmkProviderError(error)) return error;
  if (error instanceof CryptokiError) {
    const reason = reasonOf(error.ckr, decrypting);
    return new CmkProviderError(reason, `pkcs11 ${operation} failed: ${error.message}`, { cause: error });
  }
  return new CmkProviderError('unreachable', `pkcs11 ${operation} failed (${error instanceof Error ? error.name : typeof error})`, { cause: error });
}

export function ckrOf(error: unknown): string {
  return error instanceof CryptokiError ? error.ckr : '';
}
