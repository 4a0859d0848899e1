import { ClientSecretCredential, type TokenCredential } from '@azure/identity';
import { CryptographyClient, KeyClient, parseKeyVaultKeyIdentifier, type CryptographyClientOptions, type KeyVaultKey, type KeyWrapAlgorithm } from '@azure/keyvault-keys';
import { zeroize } from '../../core/bytes.js';
import { appendAadTag, checkAadTag, splitAadTag } from '../aad-binding.js';
import { CmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { AZURE_KEYVAULT_PROVIDER, AzureKeyVaultConfig, resolveConfig, type AzureKeyVaultDeployment, type ResolvedConfig } from './azure-keyvault-config.js';
import { azureFailure } from './azure-keyvault-errors.js';
import { keyLifecycle, wrapAlgorithmFor } from './azure-key-state.js';

/**
 * Azure Key Vault / Managed HSM as a CMK, through the official clients: @azure/identity's
 * ClientSecretCredential for tokens, @azure/keyvault-keys' KeyClient to read the key and
 * CryptographyClient for wrapKey / unwrapKey.
 *
 * - wrap: GET the key (current version, or the pinned one) → refuse a disabled, not-yet-valid or
 *   expired key, pick the algorithm from its type (RSA → RSA-OAEP-256, oct → A256KW) → POST
 *   …/keys/{name}/{version}/wrapkey on that exact version. The version is what we report.
 * - unwrap: POST …/keys/{name}/{version}/unwrapkey on the version that wrapped: no GET.
 *
 * Key Vault's wrapKey takes no associated data, so the blob is
 * `algorithm id (1 byte) ‖ Key Vault's wrapped key ‖ AAD tag` (aad-binding.ts).
 *
 * The CryptographyClients are made from a key reference without key material or dates, which
 * makes the library send every operation to the service (as it does when it may not read the key)
 * instead of using a cached copy of the key's attributes: Key Vault itself decides, e.g. an
 * expired key still unwraps there.
 */

const ALGORITHM_IDS: Readonly<Record<string, number>> = { 'RSA-OAEP-256': 1, A256KW: 2 };
const ALGORITHMS: readonly (KeyWrapAlgorithm | undefined)[] = [undefined, 'RSA-OAEP-256', 'A256KW'];
const VERSION = /^[0-9A-Za-z]{1,64}$/;
/** One CryptographyClient (one pipeline, one auth challenge) per key version used. */
const MAX_CACHED_CLIENTS = 16;

class AzureKeyVaultProvider implements CmkProvider {
  readonly name = AZURE_KEYVAULT_PROVIDER;
  private readonly keyClient: KeyClient;
  private readonly cryptoClients = new Map<string, CryptographyClient>();

  constructor(
    private readonly config: ResolvedConfig,
    private readonly credential: TokenCredential,
    private readonly clientOptions: CryptographyClientOptions,
  ) {
    this.keyClient = new KeyClient(config.vaultUrl, credential, { ...clientOptions });
  }

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    const current = await this.getKey(this.config.pinnedVersion, 'wrap', options);
    const version = current.properties.version ?? '';
    const lifecycle = keyLifecycle(current.properties);
    if (lifecycle.state !== 'healthy' && lifecycle.state !== 'key_expiring') {
      throw new CmkProviderError(lifecycle.state, `Azure Key Vault key ${this.config.keyName} version ${version} cannot wrap: ${lifecycle.detail}`);
    }
    if (!version) throw new CmkProviderError('unreachable', 'Azure Key Vault returned the key without a version id');
    const algorithm = wrapAlgorithmFor(current);
    let wrapped: Uint8Array;
    // The version we report is the one in the `kid` of Key Vault's wrap answer.
    let answeredKid: unknown;
    try {
      const onResponse = (response: { readonly parsedBody?: unknown }): void => {
        answeredKid = (response.parsedBody as { kid?: unknown } | undefined)?.kid;
      };
      wrapped = (await this.crypto(version).wrapKey(algorithm, key, { abortSignal: options?.signal, onResponse })).result;
    } catch (error) {
      throw await this.failure(error, 'wrap', undefined, options);
    }
    const keyVersion = typeof answeredKid === 'string' ? parseKeyVaultKeyIdentifier(answeredKid).version : version;
    if (keyVersion !== version) throw new CmkProviderError('unreachable', `Azure Key Vault wrapped with version ${keyVersion ?? '(none)'} instead of ${version}`);
    const ciphertext = Buffer.concat([Buffer.of(ALGORITHM_IDS[algorithm]!), appendAadTag(Buffer.from(wrapped), key, aad)]);
    return { ciphertext, keyVersion };
  }

  async unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    const algorithm = ALGORITHMS[ciphertext[0] ?? 0];
    if (!algorithm) throw new CmkProviderError('invalid_ciphertext', 'not an Azure Key Vault wrapped key (unknown algorithm id)');
    const { wrapped, tag } = splitAadTag(ciphertext.subarray(1));
    const version = keyVersion ?? this.config.pinnedVersion ?? '';
    if (version !== '' && !VERSION.test(version)) throw new CmkProviderError('invalid_ciphertext', 'the recorded key version is not an Azure Key Vault version id');
    let result: Uint8Array;
    try {
      result = (await this.crypto(version).unwrapKey(algorithm, wrapped, { abortSignal: options?.signal })).result;
    } catch (error) {
      throw await this.failure(error, 'unwrap', version || undefined, options);
    }
    const key = Buffer.alloc(result.length);
    key.set(result);
    zeroize(result);
    return checkAadTag(key, aad, tag);
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    let current: KeyVaultKey;
    try {
      current = await this.keyClient.getKey(this.config.keyName, { version: this.config.pinnedVersion, abortSignal: options?.signal });
    } catch (error) {
      const failure = azureFailure(error, 'describe', this.config.clientSecret);
      if (failure.reason === 'credentials_rejected') return { state: 'credentials_expired', currentVersion: null, detail: failure.message };
      if (failure.reason !== 'key_not_found') throw failure;
      return this.describeMissing(options);
    }
    const lifecycle = keyLifecycle(current.properties);
    return {
      state: lifecycle.state,
      currentVersion: current.properties.version ?? null,
      expiresAt: current.properties.expiresOn ?? null,
      ...(lifecycle.detail ? { detail: lifecycle.detail } : {}),
    };
  }

  async close(): Promise<void> {
    // The clients hold no key material; their keep-alive sockets are unreferenced and idle out.
    this.cryptoClients.clear();
  }

  private async getKey(version: string | undefined, operation: 'wrap' | 'unwrap', options?: CallOptions): Promise<KeyVaultKey> {
    try {
      return await this.keyClient.getKey(this.config.keyName, { version, abortSignal: options?.signal });
    } catch (error) {
      throw await this.failure(error, operation, undefined, options);
    }
  }

  /** A remote-only client for one version ('' = the current one). */
  private crypto(version: string): CryptographyClient {
    let client = this.cryptoClients.get(version);
    if (!client) {
      const id = `${this.config.vaultUrl}/keys/${this.config.keyName}${version ? `/${version}` : ''}`;
      const reference: KeyVaultKey = { id, name: this.config.keyName, properties: { id, name: this.config.keyName, vaultUrl: this.config.vaultUrl, version: version || undefined } };
      client = new CryptographyClient(reference, this.credential, { ...this.clientOptions });
      if (this.cryptoClients.size >= MAX_CACHED_CLIENTS) this.cryptoClients.delete(this.cryptoClients.keys().next().value!);
      this.cryptoClients.set(version, client);
    }
    return client;
  }

  /**
   * Key Vault says 404 for a key that never existed, one that is soft-deleted (recoverable), one
   * that was purged, and a version that belongs to another key. Look closer to tell which.
   */
  private async failure(error: unknown, operation: 'wrap' | 'unwrap', version: string | undefined, options?: CallOptions): Promise<CmkProviderError> {
    const failure = azureFailure(error, operation, this.config.clientSecret);
    if (failure.reason !== 'key_not_found') return failure;
    const probe = async <T>(read: () => Promise<T>): Promise<T | 'missing' | 'unknown'> =>
      read().catch((e: unknown) => (azureFailure(e, operation, this.config.clientSecret).reason === 'key_not_found' ? 'missing' : 'unknown'));
    if (version !== undefined) {
      // Versions cannot be deleted one by one: if the key is there, this version is another key's.
      const key = await probe(() => this.keyClient.getKey(this.config.keyName, { abortSignal: options?.signal }));
      if (key === 'unknown') return failure;
      if (key !== 'missing') return new CmkProviderError('invalid_ciphertext', `key ${this.config.keyName} has no version ${version}: the key was wrapped by another key`);
    }
    const deleted = await probe(() => this.keyClient.getDeletedKey(this.config.keyName, { abortSignal: options?.signal }));
    if (deleted === 'unknown') return failure;
    if (deleted !== 'missing') {
      const purgeAt = deleted.properties.scheduledPurgeDate?.toISOString() ?? 'the end of its retention period';
      return new CmkProviderError('key_pending_deletion', `Azure Key Vault key ${this.config.keyName} is deleted; it can be recovered until ${purgeAt}`);
    }
    // Neither the key nor a deleted key: for a ciphertext this key once made, it was purged.
    if (operation === 'unwrap') return new CmkProviderError('key_destroyed', `Azure Key Vault key ${this.config.keyName} no longer exists (purged): what it wrapped cannot be unwrapped`);
    return failure;
  }

  private async describeMissing(options?: CallOptions): Promise<CmkDescription> {
    try {
      const deleted = await this.keyClient.getDeletedKey(this.config.keyName, { abortSignal: options?.signal });
      return {
        state: 'key_pending_deletion',
        currentVersion: deleted.properties.version ?? null,
        deletionAt: deleted.properties.scheduledPurgeDate ?? null,
        detail: `deleted ${deleted.properties.deletedOn?.toISOString() ?? ''}; recoverable until it is purged`,
      };
    } catch (error) {
      const failure = azureFailure(error, 'describe', this.config.clientSecret);
      if (failure.reason === 'key_not_found') return { state: 'key_deleted', currentVersion: null, detail: 'no such key: purged, or never created' };
      if (failure.reason === 'permission_denied') {
        return { state: 'key_deleted', currentVersion: null, detail: 'the key is not found, and these credentials may not read deleted keys to tell whether it can still be recovered' };
      }
      throw failure;
    }
  }
}

/**
 * The factory; `deployment` is for whoever runs keystrata (extra hosts, CA), never for a customer.
 * The default export is for Azure's public and sovereign clouds.
 */
export function createAzureKeyVaultProviderFactory(deployment: AzureKeyVaultDeployment = {}): CmkProviderFactory {
  const tlsOptions = deployment.ca ? { ca: deployment.ca } : undefined;
  // One retry, for a dropped keep-alive socket or a 5xx. Key Vault's 429 carries no Retry-After, so
  // the client does not retry it: the caller sees 'throttled' at once instead of a deadline
  // 'timeout'. More retries would only run into the registry's deadline.
  const retryOptions = { maxRetries: 1, retryDelayInMs: 200, maxRetryDelayInMs: 1000 };
  return {
    name: AZURE_KEYVAULT_PROVIDER,
    configSchema: AzureKeyVaultConfig,
    secretFields: ['clientSecret'],
    open(config) {
      const resolved = resolveConfig(config, deployment);
      // Building the credential and clients sends nothing: the first token and key requests are made
      // by the first wrap, unwrap or describe.
      const credential = new ClientSecretCredential(resolved.tenantId, resolved.clientId, resolved.clientSecret, {
        authorityHost: resolved.authorityHost,
        // The authority was checked against the allowed hosts above; MSAL's own discovery call would
        // only add a request to login.microsoftonline.com.
        disableInstanceDiscovery: true,
        tlsOptions,
        retryOptions,
      });
      return new AzureKeyVaultProvider(resolved, credential, {
        tlsOptions,
        retryOptions,
        disableChallengeResourceVerification: deployment.disableChallengeResourceVerification ?? false,
        userAgentOptions: { userAgentPrefix: 'keystrata' },
      });
    },
  };
}

export const azureKeyVaultProviderFactory: CmkProviderFactory = createAzureKeyVaultProviderFactory();
