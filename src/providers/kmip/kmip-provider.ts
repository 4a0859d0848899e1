import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';
import { CmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { GCM_TAG_BYTES, KmipClient } from './kmip-client.js';
import { kmipSecureContext, type KmipEndpoint } from './kmip-connection.js';
import { describeStatus, keyStatus, STATUS_ATTRIBUTES, type KmipKeyStatus } from './kmip-key-state.js';
import { kmipFailure } from './kmip-failures.js';

/**
 * A CMK held in the customer's KMIP 1.4 key manager (an HSM or key server speaking KMIP over mutual
 * TLS). keystrata wraps an EK with the server's AES-256-GCM Encrypt, passing the EK's identity as
 * the Authenticated Encryption Additional Data, so the AAD is bound by the key manager itself. The
 * IV is ours (12 random bytes); the stored blob is IV ‖ ciphertext ‖ tag.
 *
 * KMIP keys have no versions (a ReKey makes a new object with a new Unique Identifier): the version
 * keystrata records is the key's Unique Identifier, and replacing the key is configuring a new CMK.
 */

export const KMIP_PROVIDER = 'kmip';

const IV_BYTES = 12;

const Pem = (kind: string, description: string) =>
  Type.String({ minLength: 1, maxLength: 65_536, pattern: `-----BEGIN ${kind}-----`, description });

export const KmipConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$', description: 'Host name or IP address of the KMIP server; its certificate must name it (SAN).' }),
    port: Type.Integer({ minimum: 1, maximum: 65_535, description: 'TCP port of the KMIP server (the KMIP default is 5696).' }),
    caCert: Pem('CERTIFICATE', "PEM certificate(s) of the CA that signed the KMIP server's certificate."),
    clientCert: Pem('CERTIFICATE', 'PEM client certificate keystrata presents (extended key usage clientAuth). The server knows keystrata by it.'),
    clientKey: Type.String({ minLength: 1, maxLength: 65_536, pattern: '-----BEGIN (RSA |EC )?PRIVATE KEY-----', description: 'Unencrypted PEM private key of clientCert. Secret: stored sealed, never shown.' }),
    keyId: Type.String({ minLength: 1, maxLength: 255, description: 'KMIP Unique Identifier of the AES-256 symmetric key (usage mask Encrypt and Decrypt, Active).' }),
  },
  { additionalProperties: false },
);

function invalid(field: string, why: string): KeystrataError {
  return new KeystrataError('configuration_invalid', `The ${KMIP_PROVIDER} CMK config is invalid at "${field}" (${why}).`, { field });
}

/** Loads the PEMs locally (no network): a wrong file is a config error now, not a TLS error later. */
function endpointOf(config: { host: string; port: number; caCert: string; clientCert: string; clientKey: string }): KmipEndpoint {
  let client: X509Certificate;
  try {
    new X509Certificate(config.caCert);
  } catch {
    throw invalid('caCert', 'not a PEM certificate');
  }
  try {
    client = new X509Certificate(config.clientCert);
  } catch {
    throw invalid('clientCert', 'not a PEM certificate');
  }
  let matches: boolean;
  try {
    matches = client.checkPrivateKey(createPrivateKey(config.clientKey));
  } catch {
    throw invalid('clientKey', 'not an unencrypted PEM private key');
  }
  if (!matches) throw invalid('clientKey', 'does not belong to clientCert');
  try {
    return { host: config.host, port: config.port, secureContext: kmipSecureContext({ ca: config.caCert, cert: config.clientCert, key: config.clientKey }) };
  } catch {
    throw invalid('(config)', 'the certificates and key do not make a TLS context');
  }
}

class KmipProvider implements CmkProvider {
  readonly name = KMIP_PROVIDER;

  constructor(
    private readonly client: KmipClient,
    private readonly keyId: string,
  ) {}

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    const iv = randomBytes(IV_BYTES);
    try {
      const { ciphertext, tag } = await this.client.encrypt(this.keyId, key, iv, aad, options?.signal);
      return { ciphertext: Buffer.concat([iv, ciphertext, tag]), keyVersion: this.keyId };
    } catch (error) {
      throw await this.failure(error, 'wrap', null, options?.signal);
    }
  }

  async unwrap(blob: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    if (blob.length <= IV_BYTES + GCM_TAG_BYTES) throw new CmkProviderError('invalid_ciphertext', 'wrapped key too short for IV ‖ ciphertext ‖ tag');
    const iv = blob.subarray(0, IV_BYTES);
    const ciphertext = blob.subarray(IV_BYTES, blob.length - GCM_TAG_BYTES);
    const tag = blob.subarray(blob.length - GCM_TAG_BYTES);
    // Always this CMK's key: a blob recorded under another Unique Identifier was wrapped by another
    // key and fails GCM here (invalid_ciphertext), never opens under a key this config does not name.
    try {
      return await this.client.decrypt(this.keyId, ciphertext, iv, tag, aad, options?.signal);
    } catch (error) {
      throw await this.failure(error, 'unwrap', keyVersion, options?.signal);
    }
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    let status: KmipKeyStatus;
    try {
      status = await this.status(options?.signal);
    } catch (error) {
      const failure = await this.failure(error, 'describe', null, options?.signal);
      if (failure.reason === 'credentials_rejected') return { state: 'credentials_expired', currentVersion: this.keyId, detail: failure.message };
      // Not found: destroyed (PyKMIP forgets destroyed objects) or never there; either way unusable.
      if (failure.reason === 'key_not_found' || failure.reason === 'key_destroyed') return { state: 'key_deleted', currentVersion: this.keyId, detail: failure.message };
      throw failure;
    }
    return describeStatus(status, this.keyId, new Date());
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async status(signal?: AbortSignal): Promise<KmipKeyStatus> {
    const status = keyStatus(await this.client.getAttributes(this.keyId, STATUS_ATTRIBUTES, signal));
    if (!status) throw new CmkProviderError('unreachable', `the KMIP server reported no State for key ${this.keyId}`);
    return status;
  }

  private failure(error: unknown, operation: 'wrap' | 'unwrap' | 'describe', keyVersion: string | null, signal?: AbortSignal): Promise<CmkProviderError> {
    return kmipFailure(error, { operation, keyId: this.keyId, keyVersion, status: () => this.status(signal) });
  }
}

export const kmipProviderFactory: CmkProviderFactory = {
  name: KMIP_PROVIDER,
  configSchema: KmipConfig,
  secretFields: ['clientKey'],
  open(config) {
    const parsed = checkConfig(KmipConfig, config, KMIP_PROVIDER);
    return new KmipProvider(new KmipClient(endpointOf(parsed)), parsed.keyId);
  },
};
