import { Type } from '@sinclair/typebox';
import { open, seal } from '../../core/aead.js';
import { KEY_LENGTH, zeroize } from '../../core/bytes.js';
import { KeystrataError } from '../../errors.js';
import { CmkProviderError, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { checkConfig } from '../provider-config.js';

/**
 * Uploaded key material (BYOK by file): the customer generates a 256-bit AES key and gives it to
 * keystrata, which uses it as the environment's CMK (AES-256-GCM wraps of the EK, bound to the
 * EK's identity). The material is a secret field: stored sealed under a root-derived key, never
 * shown again. The customer keeps their copy; revoking means deleting the CMK config here (there is
 * no external key store to disable it in).
 */

export const UPLOADED_PROVIDER = 'uploaded';

const Base64Key = Type.String({
  pattern: '^[A-Za-z0-9+/]{43}=$',
  description: '32 random bytes, standard base64 (44 characters), e.g. `openssl rand -base64 32`.',
});

export const UploadedConfig = Type.Object({ keyMaterial: Base64Key }, { additionalProperties: false });

class UploadedProvider implements CmkProvider {
  readonly name = UPLOADED_PROVIDER;
  constructor(private readonly material: Buffer) {}

  async wrap(key: Buffer, aad: Buffer): Promise<WrapResult> {
    return { ciphertext: seal(this.material, key, aad), keyVersion: '1' };
  }

  async unwrap(ciphertext: Buffer, aad: Buffer): Promise<Buffer> {
    const key = open(this.material, ciphertext, aad);
    if (!key) throw new CmkProviderError('invalid_ciphertext', 'the uploaded key does not open this wrapped key');
    return key;
  }

  async describe(): Promise<CmkDescription> {
    return { state: 'healthy', currentVersion: '1' };
  }

  async close(): Promise<void> {
    zeroize(this.material);
  }
}

export const uploadedProviderFactory: CmkProviderFactory = {
  name: UPLOADED_PROVIDER,
  configSchema: UploadedConfig,
  secretFields: ['keyMaterial'],
  open(config) {
    const { keyMaterial } = checkConfig(UploadedConfig, config, UPLOADED_PROVIDER);
    const material = Buffer.from(keyMaterial, 'base64');
    if (material.length !== KEY_LENGTH) {
      zeroize(material);
      throw new KeystrataError('configuration_invalid', 'The uploaded CMK config is invalid at "keyMaterial" (32 bytes, base64).', { field: 'keyMaterial' });
    }
    return new UploadedProvider(material);
  },
};
