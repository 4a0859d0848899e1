import type { KeyProperties, KeyVaultKey, KeyWrapAlgorithm } from '@azure/keyvault-keys';
import { CmkProviderError } from '../provider.js';

/** A key within this many days of its expiry date describes as key_expiring. */
const EXPIRING_WITHIN_MS = 30 * 24 * 60 * 60 * 1000;

export type KeyLifecycle =
  | { readonly state: 'healthy' | 'key_expiring'; readonly detail?: string }
  | { readonly state: 'key_disabled' | 'key_expired'; readonly detail: string };

/**
 * What a key version's attributes mean for keystrata. Key Vault refuses wrap (and encrypt, sign)
 * outside the nbf/exp window but still allows unwrap there, so an expired key keeps its data
 * readable: new wraps stop, the health probe warns. `enabled: false` stops unwrap too.
 */
export function keyLifecycle(properties: KeyProperties, now = new Date()): KeyLifecycle {
  if (properties.enabled === false) return { state: 'key_disabled', detail: 'the key version is disabled in Key Vault' };
  if (properties.notBefore && properties.notBefore > now) {
    return { state: 'key_disabled', detail: `the key version is not valid before ${properties.notBefore.toISOString()} (activation date)` };
  }
  const expiresOn = properties.expiresOn;
  if (expiresOn && expiresOn <= now) {
    return { state: 'key_expired', detail: `the key version expired at ${expiresOn.toISOString()}: it still unwraps, but wraps nothing new` };
  }
  if (expiresOn && expiresOn.getTime() - now.getTime() < EXPIRING_WITHIN_MS) {
    return { state: 'key_expiring', detail: `the key version expires at ${expiresOn.toISOString()}` };
  }
  return { state: 'healthy' };
}

/**
 * The wrap algorithm for a key's type: RSA-OAEP-256 for RSA / RSA-HSM keys (Key Vault), A256KW
 * for oct / oct-HSM keys (Managed HSM; the key must be AES-256). EC keys cannot wrap.
 */
export function wrapAlgorithmFor(key: KeyVaultKey): KeyWrapAlgorithm {
  const operations = key.keyOperations;
  if (operations && !(operations.includes('wrapKey') && operations.includes('unwrapKey'))) {
    throw new CmkProviderError('permission_denied', `the key's permitted operations (${operations.join(', ')}) do not include both wrapKey and unwrapKey`);
  }
  switch (key.keyType) {
    case 'RSA':
    case 'RSA-HSM':
      return 'RSA-OAEP-256';
    case 'oct':
    case 'oct-HSM':
      return 'A256KW';
    default:
      throw new CmkProviderError('permission_denied', `a key of type ${key.keyType ?? 'unknown'} cannot wrap keys: use an RSA key, or an AES-256 (oct-HSM) key in a Managed HSM`);
  }
}
