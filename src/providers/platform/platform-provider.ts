import { open, seal } from '../../core/aead.js';
import { randomKey, zeroize } from '../../core/bytes.js';
import { unwrapKey, wrapKey } from '../../core/wrapped-key.js';
import { Type } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';
import { CmkProviderError, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';

/**
 * The platform-managed CMK: 256 random bits per environment, stored wrapped by a key derived from
 * the service's root key. Its config is `{ wrappedMaterial: base64, version: "1" }` — the wrapped
 * material is safe to store and to show, since only the root key opens it.
 */

export const PLATFORM_PROVIDER = 'platform';
/** Parent id used in the wrap binding of a platform CMK: the root key, which has no row. */
const ROOT_KEY_ID = '00000000-0000-4000-8000-000000000000';

export interface PlatformConfig {
  readonly wrappedMaterial: string;
  readonly version: string;
}

const PlatformConfigSchema = Type.Object({ wrappedMaterial: Type.String({ minLength: 1 }), version: Type.String({ minLength: 1 }) }, { additionalProperties: false });

function parseConfig(config: Readonly<Record<string, unknown>>): PlatformConfig {
  return checkConfig(PlatformConfigSchema, config, PLATFORM_PROVIDER);
}

class PlatformProvider implements CmkProvider {
  readonly name = PLATFORM_PROVIDER;
  constructor(
    private readonly material: Buffer,
    private readonly version: string,
  ) {}

  async wrap(key: Buffer, aad: Buffer): Promise<WrapResult> {
    return { ciphertext: seal(this.material, key, aad), keyVersion: this.version };
  }

  async unwrap(ciphertext: Buffer, aad: Buffer): Promise<Buffer> {
    const key = open(this.material, ciphertext, aad);
    // The EK row and its AAD both come from the store, never from a caller: the service reports
    // this as an integrity failure for the operator, not a bad request.
    if (!key) throw new CmkProviderError('invalid_ciphertext', 'platform CMK could not unwrap the key (altered row or binding)');
    return key;
  }

  async describe(): Promise<CmkDescription> {
    return { state: 'healthy', currentVersion: this.version };
  }

  async close(): Promise<void> {
    zeroize(this.material);
  }
}

/** `rootWrapKey` is the root-derived key that wraps platform CMK material (see root-key.ts). */
export function platformProviderFactory(rootWrapKey: Buffer): CmkProviderFactory & {
  provision(identity: { cmkId: string; environmentId: string }): PlatformConfig;
} {
  return {
    name: PLATFORM_PROVIDER,
    // Platform CMKs are made by keystrata (provision), never configured by a customer.
    configSchema: PlatformConfigSchema,
    secretFields: [],
    provision({ cmkId, environmentId }) {
      const material = randomKey();
      try {
        const wrapped = wrapKey(rootWrapKey, material, { environmentId, keyId: cmkId, kind: 'cmk', parentId: ROOT_KEY_ID });
        return { wrappedMaterial: wrapped.toString('base64'), version: '1' };
      } finally {
        zeroize(material);
      }
    },
    open(config, { cmkId, environmentId }) {
      const parsed = parseConfig(config);
      const material = unwrapKey(rootWrapKey, Buffer.from(parsed.wrappedMaterial, 'base64'), {
        environmentId,
        keyId: cmkId,
        kind: 'cmk',
        parentId: ROOT_KEY_ID,
      });
      if (!material) {
        // The root key was verified against the database at start-up, so a CMK that does not open
        // means its stored row was altered.
        throw new KeystrataError('integrity_check_failed', 'A stored key failed its integrity check.', {
          logDetail: `platform CMK ${cmkId} failed to unwrap under the root key`,
        });
      }
      return new PlatformProvider(material, parsed.version);
    },
  };
}
