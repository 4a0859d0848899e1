import { zeroize } from '../../core/bytes.js';
import { CmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { crc32c } from './crc32c.js';
import { connectCloudKms, runWithSignal, type CryptoKey, type KmsApi, type KmsApiSupplier } from './gcp-kms-client.js';
import { GCP_KMS_PROVIDER, GcpKmsConfig, parseGcpKmsConfig, type GcpKmsPolicy, type GcpKmsSettings } from './gcp-kms-config.js';
import { kmsFailure, type KmsOperation } from './gcp-kms-errors.js';

/**
 * Google Cloud KMS: the EK is wrapped by `encrypt` on a symmetric CryptoKey, with the EK's identity
 * as additionalAuthenticatedData — Cloud KMS binds it (AES-GCM), so no AAD tag of our own. Cloud KMS
 * encrypts with the key's primary version and names it in the response; that version id is the
 * keyVersion. Decrypt finds the version in the ciphertext, so ciphertexts of older versions keep
 * unwrapping after rotation while their version is ENABLED.
 *
 * Every request and response carries CRC32C checksums (Google's end-to-end integrity fields): a
 * wrapped EK damaged in transit is refused before it is stored.
 */

const VERSION_OF = /\/cryptoKeyVersions\/([^/]+)$/;

function timestamp(value: CryptoKey['createTime']): Date | null {
  if (!value || value.seconds === null || value.seconds === undefined) return null;
  return new Date(Number(value.seconds) * 1000 + Math.floor((value.nanos ?? 0) / 1e6));
}

const checksumOf = (value: { value?: unknown } | null | undefined) => (value?.value === undefined || value.value === null ? null : Number(value.value));

/** The answer to a request whose checksums do not match: corrupted in transit, retry. */
function corrupted(operation: KmsOperation, what: string): CmkProviderError {
  return new CmkProviderError('unreachable', `Cloud KMS ${operation}: ${what} failed its CRC32C check (damaged in transit); retry`);
}

class GcpKmsProvider implements CmkProvider {
  readonly name = GCP_KMS_PROVIDER;
  private api: Promise<KmsApi> | null = null;
  private closed = false;

  constructor(
    private readonly settings: GcpKmsSettings,
    private readonly connect: KmsApiSupplier,
  ) {}

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    const { keyName } = this.settings;
    const response = await this.call('wrap', options, (api) =>
      api.encrypt({ name: keyName, plaintext: key, additionalAuthenticatedData: aad, plaintextCrc32c: { value: crc32c(key) }, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } }),
    );
    /* Postcondition: Cloud KMS verified both input checksums, the ciphertext matches its checksum,
       and it was made by a version of THIS key. */
    if (!response.verifiedPlaintextCrc32c || !response.verifiedAdditionalAuthenticatedDataCrc32c) throw corrupted('wrap', 'the request');
    const ciphertext = Buffer.from(response.ciphertext ?? []);
    if (ciphertext.length === 0 || checksumOf(response.ciphertextCrc32c) !== crc32c(ciphertext)) throw corrupted('wrap', 'the ciphertext');
    const version = response.name?.startsWith(`${keyName}/cryptoKeyVersions/`) ? VERSION_OF.exec(response.name)?.[1] : undefined;
    if (!version) throw new CmkProviderError('unreachable', `Cloud KMS wrap: the answer names another key version (${response.name ?? 'none'})`);
    return { ciphertext, keyVersion: version };
  }

  /** `keyVersion` is not needed: Cloud KMS reads the version from the ciphertext. */
  async unwrap(ciphertext: Buffer, aad: Buffer, _keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    const response = await this.call('unwrap', options, (api) =>
      api.decrypt({ name: this.settings.keyName, ciphertext, additionalAuthenticatedData: aad, ciphertextCrc32c: { value: crc32c(ciphertext) }, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } }),
    );
    const plaintext = response.plaintext;
    if (!plaintext || typeof plaintext === 'string') throw new CmkProviderError('unreachable', 'Cloud KMS unwrap: the answer holds no plaintext');
    const key = Buffer.from(plaintext);
    zeroize(plaintext);
    if (checksumOf(response.plaintextCrc32c) !== crc32c(key)) {
      zeroize(key);
      throw corrupted('unwrap', 'the plaintext');
    }
    return key;
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = await this.call('describe', options, (api) => api.getCryptoKey(this.settings.keyName));
    } catch (error) {
      // Rejected credentials are a state to show (the customer must rotate the key file), not an outage.
      if (error instanceof CmkProviderError && error.reason === 'credentials_rejected') return { state: 'credentials_expired', currentVersion: null, detail: error.message };
      throw error;
    }
    const rotation = timestamp(cryptoKey.nextRotationTime);
    const detail = rotation ? `next automatic rotation ${rotation.toISOString()}` : 'no automatic rotation';
    const purpose = String(cryptoKey.purpose ?? '');
    const primary = cryptoKey.primary;
    if (purpose !== 'ENCRYPT_DECRYPT' || !primary?.name) {
      return { state: 'key_disabled', currentVersion: null, detail: `the key cannot encrypt (purpose ${purpose || 'unknown'}, ${primary ? 'has' : 'no'} primary version)` };
    }
    const currentVersion = VERSION_OF.exec(primary.name)?.[1] ?? null;
    const state = String(primary.state ?? '');
    switch (state) {
      case 'ENABLED':
        return { state: 'healthy', currentVersion, expiresAt: null, detail };
      case 'DESTROY_SCHEDULED':
        return { state: 'key_pending_deletion', currentVersion, deletionAt: timestamp(primary.destroyTime), detail: 'primary version scheduled for destruction: restore it at Cloud KMS (it returns DISABLED; then enable it)' };
      case 'DESTROYED':
      case 'PENDING_EXTERNAL_DESTRUCTION':
      case 'EXTERNAL_DESTRUCTION_FAILED':
        return { state: 'key_deleted', currentVersion, detail: `primary version ${state}: what it wrapped cannot be unwrapped again` };
      default:
        return { state: 'key_disabled', currentVersion, detail: `primary version ${state || 'in an unknown state'}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const api = this.api;
    this.api = null;
    if (api) await api.then((a) => a.close()).catch(() => undefined);
  }

  /** Runs one Cloud KMS call: lazily connected, abandoned when the signal aborts, errors mapped. */
  private async call<T>(operation: KmsOperation, options: CallOptions | undefined, run: (api: KmsApi) => Promise<T>): Promise<T> {
    const signal = options?.signal;
    if (this.closed) throw new CmkProviderError('unreachable', `Cloud KMS ${operation}: provider closed`);
    if (signal?.aborted) throw new CmkProviderError('timeout', `Cloud KMS ${operation} abandoned (deadline)`);
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<never>((_, reject) => {
      onAbort = () => reject(new CmkProviderError('timeout', `Cloud KMS ${operation} abandoned (deadline)`));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([runWithSignal(signal, async () => run(await this.client())), abandoned]);
    } catch (error) {
      throw kmsFailure(error, operation);
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private client(): Promise<KmsApi> {
    if (!this.api) {
      const api = this.connect(this.settings);
      this.api = api;
      // A failed connect (e.g. no ADC yet) is retried by the next call.
      api.catch(() => {
        if (this.api === api) this.api = null;
      });
    }
    return this.api;
  }
}

/** Builds the gcp-kms factory. `connect` is the SDK supplier (tests may pass another). */
export function createGcpKmsProviderFactory(policy: GcpKmsPolicy = {}, connect: KmsApiSupplier = connectCloudKms): CmkProviderFactory {
  return {
    name: GCP_KMS_PROVIDER,
    configSchema: GcpKmsConfig,
    secretFields: ['credentials'],
    open(config) {
      return new GcpKmsProvider(parseGcpKmsConfig(config, policy), connect);
    },
  };
}

/** Production: Google API hosts over HTTPS only; application default credentials allowed. */
export const gcpKmsProviderFactory: CmkProviderFactory = createGcpKmsProviderFactory();
