import { open, seal } from '../core/aead.js';
import { KeystrataError } from '../errors.js';
import type { ProviderIdentity } from './provider.js';

/**
 * Secret fields of a provider config (PIN, client secret, token, private key, key material) are
 * stored sealed — AES-256-GCM under a key derived from the root key, bound to the CMK id and field
 * name — so a copy of the database alone yields no credential to a customer's key store. The API
 * shows configs without them (publicConfig).
 */

const PREFIX = 'ks-sealed:v1:';

function aad(identity: ProviderIdentity, field: string): Buffer {
  return Buffer.from(`keystrata cmk secret\0${identity.cmkId}\0${field}`, 'utf8');
}

export function sealSecrets(
  config: Readonly<Record<string, unknown>>,
  secretFields: readonly string[],
  key: Buffer,
  identity: ProviderIdentity,
): Record<string, unknown> {
  const stored: Record<string, unknown> = { ...config };
  for (const field of secretFields) {
    if (stored[field] === undefined) continue;
    const clear = Buffer.from(JSON.stringify(stored[field]), 'utf8');
    stored[field] = PREFIX + seal(key, clear, aad(identity, field)).toString('base64');
    clear.fill(0);
  }
  return stored;
}

export function openSecrets(
  stored: Readonly<Record<string, unknown>>,
  secretFields: readonly string[],
  key: Buffer,
  identity: ProviderIdentity,
): Record<string, unknown> {
  const config: Record<string, unknown> = { ...stored };
  for (const field of secretFields) {
    const value = config[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !value.startsWith(PREFIX)) {
      throw new KeystrataError('integrity_check_failed', 'A stored CMK configuration failed its integrity check.', {
        logDetail: `CMK ${identity.cmkId}: secret field ${field} is not sealed`,
      });
    }
    const clear = open(key, Buffer.from(value.slice(PREFIX.length), 'base64'), aad(identity, field));
    if (!clear) {
      throw new KeystrataError('integrity_check_failed', 'A stored CMK configuration failed its integrity check.', {
        logDetail: `CMK ${identity.cmkId}: secret field ${field} does not open`,
      });
    }
    config[field] = JSON.parse(clear.toString('utf8')) as unknown;
    clear.fill(0);
  }
  return config;
}

/** The config as the API may show it: every secret field left out. */
export function publicConfig(stored: Readonly<Record<string, unknown>>, secretFields: readonly string[]): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(stored)) if (!secretFields.includes(field)) shown[field] = value;
  return shown;
}
