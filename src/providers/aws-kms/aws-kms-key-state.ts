import type { KeyMetadata } from '@aws-sdk/client-kms';
import { CmkProviderError, type CmkDescription, type CmkFailureReason } from '../provider.js';

/**
 * What DescribeKey's KeyMetadata means for keystrata: the health state, the current version, and
 * why a key in a given state refuses use (KMSInvalidStateException says only "invalid state").
 */

/** Imported key material closer than this to its ValidTo is reported as key_expiring. */
export const EXPIRING_WITHIN_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The version new wraps use: "<key ARN>/<current key material id>". KMS rotates material under the
 * same key (automatically or on demand) and names each material; the key ARN is there because an
 * alias can be re-pointed to another key (manual rotation), and unwrap must then ask for the key
 * that wrapped. Keys without material ids (CloudHSM and external key stores, multi-Region imported
 * keys) cannot be rotated inside KMS: their one version is the key ARN alone.
 */
export function versionOf(metadata: KeyMetadata): string | null {
  if (!metadata.Arn) return null;
  if (metadata.CurrentKeyMaterialId) return `${metadata.Arn}/${metadata.CurrentKeyMaterialId}`;
  return metadata.KeyState === 'PendingImport' ? null : metadata.Arn;
}

const VERSION_PATTERN = /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[A-Za-z0-9-]+)(?:\/[0-9A-Za-z-]+)?$/;

/** The key ARN a version names, or null for a version this provider did not make. */
export function keyArnOfVersion(version: string | null): string | null {
  return (version && VERSION_PATTERN.exec(version)?.[1]) || null;
}

/** Only a symmetric encryption key can wrap with Encrypt/Decrypt and an encryption context. */
export function requireSymmetric(metadata: KeyMetadata, keyId: string): void {
  const spec = metadata.KeySpec ?? metadata.CustomerMasterKeySpec;
  if ((spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') || (metadata.KeyUsage !== undefined && metadata.KeyUsage !== 'ENCRYPT_DECRYPT')) {
    throw new CmkProviderError('key_not_found', `AWS KMS key ${keyId} is a ${spec ?? 'non-symmetric'} ${metadata.KeyUsage ?? ''} key; keystrata needs a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)`);
  }
}

const iso = (date: Date | undefined): string => (date ? date.toISOString() : 'unknown');

/**
 * Why a key refuses use in its current state, or null when the state allows use. `forDecrypt` with
 * an enabled imported key: the material of that one ciphertext is gone (expired or deleted), while
 * newer material works.
 */
export function refusalOf(metadata: KeyMetadata, keyId: string, forDecrypt: boolean): CmkProviderError | null {
  const state = metadata.KeyState;
  const fail = (reason: CmkFailureReason, why: string) => new CmkProviderError(reason, `AWS KMS key ${keyId} ${why}`);
  switch (state) {
    case 'Enabled':
    case 'Updating':
      return forDecrypt && metadata.Origin === 'EXTERNAL' ? fail('key_expired', 'no longer holds the imported key material this key was wrapped under (expired or deleted): re-import it') : null;
    case 'Disabled':
      return fail('key_disabled', 'is disabled: enable it in AWS KMS');
    case 'PendingDeletion':
    case 'PendingReplicaDeletion':
      return fail('key_pending_deletion', `is scheduled for deletion on ${iso(metadata.DeletionDate)}: cancel the deletion (then enable the key) in AWS KMS`);
    case 'PendingImport':
      return fail('key_expired', `has no key material (imported material expired${metadata.ValidTo ? ` on ${iso(metadata.ValidTo)}` : ''} or was deleted): re-import the same material`);
    case 'Unavailable':
      return fail('unreachable', 'is unavailable: its custom key store is disconnected');
    default:
      return fail('unreachable', `is not usable now (KeyState ${state ?? 'unknown'})`);
  }
}

/** The health description of a key DescribeKey found. */
export function descriptionOf(metadata: KeyMetadata, now: Date): CmkDescription {
  const currentVersion = versionOf(metadata);
  const expiresAt = metadata.ValidTo ?? null;
  switch (metadata.KeyState) {
    case 'Enabled':
    case 'Updating': {
      if (!expiresAt) return { state: 'healthy', currentVersion };
      const left = expiresAt.getTime() - now.getTime();
      if (left <= 0) return { state: 'key_expired', currentVersion, expiresAt, detail: 'imported key material has expired: re-import it' };
      if (left < EXPIRING_WITHIN_MS) return { state: 'key_expiring', currentVersion, expiresAt, detail: 'imported key material expires soon: re-import it with a later expiry' };
      return { state: 'healthy', currentVersion, expiresAt };
    }
    case 'Disabled':
      return { state: 'key_disabled', currentVersion, expiresAt };
    case 'PendingDeletion':
    case 'PendingReplicaDeletion':
      return { state: 'key_pending_deletion', currentVersion, deletionAt: metadata.DeletionDate ?? null, detail: 'cancel the key deletion in AWS KMS, then enable the key' };
    case 'PendingImport':
      return { state: 'key_expired', currentVersion, expiresAt, detail: 'no key material: imported material expired or was deleted; re-import the same material' };
    case 'Unavailable':
      return { state: 'unreachable', currentVersion, detail: 'the key’s custom key store is disconnected' };
    default:
      return { state: 'unreachable', currentVersion, detail: `KeyState ${metadata.KeyState ?? 'unknown'}` };
  }
}
