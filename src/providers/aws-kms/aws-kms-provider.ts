import { DecryptCommand, DescribeKeyCommand, EncryptCommand, KMSClient, type KeyMetadata } from '@aws-sdk/client-kms';
import { KEY_LENGTH, zeroize } from '../../core/bytes.js';
import { CmkProviderError, isCmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type ProviderIdentity, type WrapResult } from '../provider.js';
import { AWS_KMS_PROVIDER, AWS_KMS_SECRET_FIELDS, AwsKmsConfigSchema, namesAlias, parseAwsKmsConfig, type AwsKmsConfig, type AwsKmsDeployment } from './aws-kms-config.js';
import { describeFailure, directReason, kmsFailureOf, mapKmsError } from './aws-kms-errors.js';
import { descriptionOf, keyArnOfVersion, refusalOf, requireSymmetric, versionOf } from './aws-kms-key-state.js';

/**
 * AWS KMS as the CMK: the EK is wrapped with KMS Encrypt under the customer's symmetric key and
 * unwrapped with Decrypt, through the official client (@aws-sdk/client-kms).
 *
 * AAD binding is native: the AAD goes into the encryption context, which KMS authenticates, so a
 * wrapped EK only decrypts with the same AAD (InvalidCiphertextException otherwise). Decrypt also
 * names the key (see unwrap), so a ciphertext of any other key is IncorrectKeyException instead of
 * being decrypted by whatever key it names.
 *
 * The context also carries the environment id in the clear: customers can pin their key policy to
 * their own environment (kms:EncryptionContext:keystrata-environment), so keystrata's shared AWS
 * identity cannot be made to use their key for another tenant (the confused-deputy case).
 *
 * Versions: see versionOf. The material id a wrap reports is read (DescribeKey) BEFORE Encrypt: if
 * KMS rotates in between, keystrata records the older material for a key wrapped under the newer
 * one and merely re-wraps it again later; the other order could record a key as current while it
 * sits under material that an imported-key rotation may later delete. The key ARN in the version
 * is the one Encrypt answers with, so it is exact even if an alias moves in between.
 */

const AAD_CONTEXT_KEY = 'keystrata-aad';
const ENVIRONMENT_CONTEXT_KEY = 'keystrata-environment';

type Operation = 'Encrypt' | 'Decrypt' | 'DescribeKey';

export class AwsKmsProvider implements CmkProvider {
  readonly name = AWS_KMS_PROVIDER;
  private readonly keyId: string;
  private readonly alias: boolean;
  /** Masked out of any service message that would echo them (see aws-kms-errors.ts). */
  private readonly secrets: readonly string[];

  constructor(
    private readonly client: KMSClient,
    config: AwsKmsConfig,
    private readonly identity: ProviderIdentity,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.keyId = config.keyId;
    this.alias = namesAlias(config.keyId);
    this.secrets = [config.secretAccessKey, config.sessionToken].filter((s): s is string => s !== undefined);
  }

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    const metadata = await this.describeKey(options);
    requireSymmetric(metadata, this.keyId);
    // A key KMS already says it will refuse: report why without asking it to encrypt.
    const refusal = refusalOf(metadata, this.keyId, false);
    if (refusal) throw refusal;
    const described = versionOf(metadata);
    if (described === null) throw new CmkProviderError('key_expired', `AWS KMS key ${this.keyId} has no current key material`);
    let ciphertext: Uint8Array | undefined;
    let encryptedBy: string | undefined;
    try {
      // The client copies the key into a base64 JSON string for the request body: a JS string
      // cannot be wiped, which is the price of any HTTP KMS API (the request travels over TLS).
      const answer = await this.client.send(new EncryptCommand({ KeyId: this.keyId, Plaintext: key, EncryptionContext: this.context(aad), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }), {
        abortSignal: options?.signal,
      });
      ciphertext = answer.CiphertextBlob;
      encryptedBy = answer.KeyId;
    } catch (error) {
      throw await this.failure(error, 'Encrypt', options);
    }
    if (!ciphertext || ciphertext.length === 0) throw new CmkProviderError('unreachable', `AWS KMS Encrypt on ${this.keyId} answered without a ciphertext`);
    // An alias re-pointed between the two calls: the material is unknown, the key is not. A version
    // other than the current one only makes keystrata re-wrap later.
    const keyVersion = encryptedBy === undefined || encryptedBy === metadata.Arn ? described : encryptedBy;
    return { ciphertext: Buffer.from(ciphertext), keyVersion };
  }

  /**
   * A KMS ciphertext names its key material itself, and KMS keeps every material of a key (imported
   * ones until they expire), so old wraps decrypt after rotations. Decrypt always names the key
   * (a ciphertext of any other key is refused): the configured key, or — when the config names an
   * alias, which may since point elsewhere — the key ARN recorded in `keyVersion` at wrap time.
   */
  async unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    const keyId = (this.alias && keyArnOfVersion(keyVersion)) || this.keyId;
    let plaintext: Uint8Array | undefined;
    try {
      const answer = await this.client.send(
        new DecryptCommand({ CiphertextBlob: ciphertext, KeyId: keyId, EncryptionContext: this.context(aad), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
        { abortSignal: options?.signal },
      );
      plaintext = answer.Plaintext;
    } catch (error) {
      throw await this.failure(error, 'Decrypt', options, keyId);
    }
    if (!plaintext || plaintext.length !== KEY_LENGTH) {
      zeroize(plaintext);
      throw new CmkProviderError('invalid_ciphertext', `AWS KMS Decrypt on ${keyId} did not yield a ${KEY_LENGTH}-byte key`);
    }
    // Our own Buffer for the caller to own and zero; the client's copy is wiped now.
    const key = Buffer.from(plaintext);
    zeroize(plaintext);
    return key;
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    let metadata: KeyMetadata;
    try {
      metadata = await this.fetchMetadata(options);
    } catch (error) {
      if (isCmkProviderError(error)) throw error;
      const failure = kmsFailureOf(error, this.secrets);
      const message = describeFailure('DescribeKey', this.keyId, failure);
      if (directReason(failure) === 'credentials_rejected') return { state: 'credentials_expired', currentVersion: null, detail: message };
      // A stored CMK passed a wrap + unwrap round trip, so a key (not an alias) KMS no longer knows
      // was deleted at the end of its deletion waiting period.
      if (failure.name === 'NotFoundException' && !this.alias) return { state: 'key_deleted', currentVersion: null, detail: message };
      throw mapKmsError(error, 'DescribeKey', this.keyId, this.secrets);
    }
    requireSymmetric(metadata, this.keyId);
    return descriptionOf(metadata, this.now());
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private context(aad: Buffer): Record<string, string> {
    return { [AAD_CONTEXT_KEY]: aad.toString('base64'), [ENVIRONMENT_CONTEXT_KEY]: this.identity.environmentId };
  }

  /** DescribeKey as the client answers it: SDK errors are not mapped yet. */
  private async fetchMetadata(options?: CallOptions, keyId = this.keyId): Promise<KeyMetadata> {
    const metadata = (await this.client.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal: options?.signal })).KeyMetadata;
    if (!metadata) throw new CmkProviderError('unreachable', `AWS KMS DescribeKey on ${keyId} answered without key metadata`);
    return metadata;
  }

  private async describeKey(options?: CallOptions, keyId = this.keyId): Promise<KeyMetadata> {
    try {
      return await this.fetchMetadata(options, keyId);
    } catch (error) {
      throw await this.failure(error, 'DescribeKey', options, keyId);
    }
  }

  /**
   * The CmkProviderError for a failed call on `keyId` (the configured key, or the key ARN an unwrap
   * through an alias named); asks DescribeKey when the error alone does not say why.
   */
  private async failure(error: unknown, operation: Operation, options?: CallOptions, keyId = this.keyId): Promise<CmkProviderError> {
    const failure = kmsFailureOf(error, this.secrets);
    if (directReason(failure) !== undefined) return mapKmsError(error, operation, keyId, this.secrets);
    const message = describeFailure(operation, keyId, failure);
    if (failure.name === 'NotFoundException') {
      // Decrypt of a ciphertext this key made (the KeyId check guarantees that) proves the key
      // existed; KMS not knowing it now means it was deleted — unless Decrypt named an alias, which
      // can be removed while its key lives on.
      if (operation === 'Decrypt' && !namesAlias(keyId)) {
        return new CmkProviderError('key_destroyed', `${message}: the key was deleted from AWS KMS; what it wrapped cannot be decrypted again`);
      }
      const hint = namesAlias(keyId) ? ': the alias was removed (re-create it for the same key) or its key was deleted' : ': wrong key id, region or account, or a deleted key';
      return new CmkProviderError('key_not_found', message + hint);
    }
    // KMSInvalidStateException does not say which state: ask. If asking fails too, the key is
    // still not usable now; key_disabled is the reversible reading of that.
    if (operation !== 'DescribeKey') {
      const metadata = await this.describeKey(options, keyId).catch(() => undefined);
      const refusal = metadata && refusalOf(metadata, keyId, operation === 'Decrypt');
      if (refusal) return new CmkProviderError(refusal.reason, refusal.message);
    }
    return new CmkProviderError('key_disabled', `${message}: the key is not usable in its current state`);
  }
}

/**
 * The factory for a deployment: `deployment` (operator-only) may allow further endpoint hosts. The
 * default export accepts AWS's own KMS endpoints only.
 */
export function createAwsKmsProviderFactory(deployment: AwsKmsDeployment = {}): CmkProviderFactory {
  return {
    name: AWS_KMS_PROVIDER,
    configSchema: AwsKmsConfigSchema,
    secretFields: AWS_KMS_SECRET_FIELDS,
    open(config, identity) {
      const parsed = parseAwsKmsConfig(config, deployment);
      // Constructing the client touches no network: credentials (static, or the default chain) and
      // the endpoint are resolved on the first call. One attempt per call: the registry's deadline
      // bounds each call, and retries stacking up behind a throttling KMS would only add load.
      const client = new KMSClient({
        region: parsed.region,
        maxAttempts: 1,
        ...(parsed.endpoint ? { endpoint: parsed.endpoint } : {}),
        ...(parsed.accessKeyId && parsed.secretAccessKey
          ? { credentials: { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey, ...(parsed.sessionToken ? { sessionToken: parsed.sessionToken } : {}) } }
          : {}),
      });
      return new AwsKmsProvider(client, parsed, identity);
    },
  };
}

export const awsKmsProviderFactory: CmkProviderFactory = createAwsKmsProviderFactory();
