import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KEY_LENGTH, constantTimeEqual, randomKey, zeroize } from '../core/bytes.js';
import { hkdfSha256 } from '../core/hkdf.js';
import { KeystrataError } from '../errors.js';
import type { Store } from '../store/store.js';

/**
 * The platform root key: the one secret keystrata keeps outside the database. It wraps the
 * platform-managed CMKs (through a derived subkey) and nothing else; customer-managed CMKs never
 * depend on it.
 *
 * It comes from KEYSTRATA_ROOT_KEY (base64) or the key file (base64 text, mode 0600). A new key is
 * generated only for a database that has never had one: generating one for an existing database
 * would silently make every platform-managed key in it unreadable.
 */

const CHECK_SETTING = 'root_key_check';
const SALT = Buffer.from('keystrata root key v1', 'utf8');

export interface RootKeySource {
  readonly rootKeyBase64: string | undefined;
  readonly rootKeyFile: string;
}

export interface PreparedRootKey {
  /** Subkey that wraps platform CMK material. */
  readonly platformWrapKey: Buffer;
  /** Subkey from which the per-workspace audit chain and body keys are derived. */
  readonly auditSecret: Buffer;
  /** HS256 key of the JWTs keystrata issues. */
  readonly jwtKey: Buffer;
  /** Seals the secret fields of customer CMK configs (credentials to their key stores). */
  readonly cmkSecretsKey: Buffer;
  /** True when this call generated the root key file. */
  readonly created: boolean;
}

function decodeRootKey(base64: string, where: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== KEY_LENGTH) {
    zeroize(key);
    throw new KeystrataError('configuration_invalid', `The root key in ${where} must be 32 bytes, base64-encoded.`);
  }
  return key;
}

function readRootKey(source: RootKeySource): Buffer | undefined {
  if (source.rootKeyBase64 !== undefined) return decodeRootKey(source.rootKeyBase64, 'KEYSTRATA_ROOT_KEY');
  if (!existsSync(source.rootKeyFile)) return undefined;
  return decodeRootKey(readFileSync(source.rootKeyFile, 'utf8'), source.rootKeyFile);
}

function createRootKeyFile(path: string): Buffer {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomKey();
  // 'wx' fails if the file appeared meanwhile, so two processes can never overwrite each other's key.
  writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return key;
}

function checkValue(rootKey: Buffer): string {
  return hkdfSha256(rootKey, SALT, 'keystrata root key check', 32).toString('hex');
}

/** Load (or, for a new database, create) the root key and verify it belongs to this database. */
export async function prepareRootKey(source: RootKeySource, store: Pick<Store, 'getSetting' | 'putSettingIfAbsent'>): Promise<PreparedRootKey> {
  const storedCheck = await store.getSetting(CHECK_SETTING);
  let rootKey = readRootKey(source);
  let created = false;
  if (!rootKey) {
    if (storedCheck !== undefined) {
      throw new KeystrataError(
        'root_key_mismatch',
        `This database was initialised with a root key, but none was found (KEYSTRATA_ROOT_KEY is unset and ${source.rootKeyFile} does not exist). Restore the original root key; a new one cannot open existing keys.`,
      );
    }
    rootKey = createRootKeyFile(source.rootKeyFile);
    created = true;
  }
  try {
    const ours = checkValue(rootKey);
    const stored = storedCheck ?? (await store.putSettingIfAbsent(CHECK_SETTING, ours));
    if (!constantTimeEqual(stored, ours)) {
      throw new KeystrataError(
        'root_key_mismatch',
        'The root key does not match the one this database was initialised with. Check KEYSTRATA_ROOT_KEY / KEYSTRATA_ROOT_KEY_FILE.',
      );
    }
    // One root secret, separate subkeys per purpose: a key is never used by two algorithms.
    return {
      platformWrapKey: hkdfSha256(rootKey, SALT, 'keystrata platform cmk wrap', 32),
      auditSecret: hkdfSha256(rootKey, SALT, 'keystrata audit', 32),
      jwtKey: hkdfSha256(rootKey, SALT, 'keystrata jwt hs256', 32),
      cmkSecretsKey: hkdfSha256(rootKey, SALT, 'keystrata cmk config secrets', 32),
      created,
    };
  } finally {
    zeroize(rootKey);
  }
}
