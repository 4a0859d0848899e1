import { KeystrataError } from '../../errors.js';
import { CmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { TOO_OLD, ciphertextVersion, commonFailure, saysBadCiphertext, saysInvalidToken, saysNoRoute, vaultMessage } from './vault-answers.js';
import { VaultHttp, type VaultAnswer } from './vault-http.js';
import { VAULT_TRANSIT_PROVIDER, VaultTransitConfig, parseVaultTransitConfig, type VaultTransitSettings } from './vault-transit-config.js';

/**
 * A CMK held in HashiCorp Vault's transit secrets engine. wrap = `POST <mount>/encrypt/<key>`,
 * unwrap = `POST <mount>/decrypt/<key>`, both with `associated_data` = the EK's AAD, so the AEAD
 * key types (aes256-gcm96, chacha20-poly1305, xchacha20-poly1305) bind it natively; Vault refuses
 * associated data for any other type, and test-and-save reports that instead of wrapping unbound.
 *
 * The ciphertext keystrata stores is Vault's own string "vault:vN:<base64>", and the key version is
 * that N: after a rotation new wraps say the new N and old ones still decrypt, as transit keeps
 * every version at or above min_decryption_version.
 *
 * Transit has no "disabled" or "pending deletion" state. What it has, and how it is reported:
 * - a version below min_decryption_version (reversible) → key_disabled;
 * - a version trimmed away (min_available_version), or the key deleted → key_destroyed on unwrap,
 *   key_deleted in describe: nothing brings it back but a transit backup of the key;
 * - 403 is Vault's answer both to a bad token and to a missing policy: the token's own
 *   lookup-self (allowed by Vault's default policy) tells them apart.
 */

/** describe() warns about the token this long before it expires (the window keys get too). */
const TOKEN_WARNING_MS = 30 * 86_400_000;

/** Vault's key types that take associated_data (keysutil KeyType.AssociatedDataSupported). */
const AEAD_TYPES = new Set(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305']);

function unsuitableKey(keyName: string, why: string): KeystrataError {
  return new KeystrataError('cmk_test_failed', `The Vault transit key "${keyName}" cannot be used as a CMK: ${why}. Nothing was saved.`);
}

class VaultTransitProvider implements CmkProvider {
  readonly name = VAULT_TRANSIT_PROVIDER;
  private readonly http: VaultHttp;
  /** For messages: where the key is, never the token. */
  private readonly where: string;
  private readonly key: string;

  constructor(private readonly settings: VaultTransitSettings) {
    this.http = new VaultHttp(settings);
    this.where = settings.address.host;
    this.key = `"${settings.keyName}" (mount "${settings.mount}"${settings.namespace === undefined ? '' : `, namespace "${settings.namespace}"`})`;
  }

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    // Vault takes the plaintext as base64 in JSON; that string cannot be zeroed (the request Buffer is).
    const body = { plaintext: key.toString('base64'), ...(aad.length > 0 ? { associated_data: aad.toString('base64') } : {}) };
    const answer = await this.http.call('POST', this.path('encrypt'), body, options?.signal);
    if (answer.status === 200) {
      const ciphertext = answer.data?.ciphertext;
      const version = typeof ciphertext === 'string' ? ciphertextVersion(ciphertext) : undefined;
      if (typeof ciphertext !== 'string' || version === undefined) {
        throw new CmkProviderError('unreachable', `Vault at ${this.where} answered encrypt without a transit ciphertext`);
      }
      return { ciphertext: Buffer.from(ciphertext, 'ascii'), keyVersion: version };
    }
    throw await this.wrapFailure(answer, options?.signal);
  }

  async unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    const text = ciphertext.toString('latin1');
    const version = ciphertextVersion(text);
    if (version === undefined) throw new CmkProviderError('invalid_ciphertext', 'the wrapped key is not a Vault transit ciphertext');
    // The version is stored beside the ciphertext and inside it; if they disagree, one was altered.
    if (keyVersion !== null && keyVersion !== version) throw new CmkProviderError('invalid_ciphertext', 'the recorded key version does not match the wrapped key');
    const body = { ciphertext: text, ...(aad.length > 0 ? { associated_data: aad.toString('base64') } : {}) };
    const answer = await this.http.call('POST', this.path('decrypt'), body, options?.signal);
    if (answer.status === 200) {
      const plaintext = answer.data?.plaintext;
      if (typeof plaintext !== 'string') throw new CmkProviderError('unreachable', `Vault at ${this.where} answered decrypt without a plaintext`);
      return Buffer.from(plaintext, 'base64');
    }
    throw await this.unwrapFailure(answer, version, options?.signal);
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    const signal = options?.signal;
    const [key, self] = await Promise.all([this.http.call('GET', this.path('keys'), undefined, signal), this.http.call('GET', 'auth/token/lookup-self', undefined, signal)]);
    const tokenNote = this.tokenNote(self);
    if (key.status === 200) return this.describeKey(key.data ?? {}, tokenNote);
    if (key.status === 403) {
      if (saysInvalidToken(key) || self.status === 403) {
        return { state: 'credentials_expired', currentVersion: null, detail: 'Vault refused the token: it is expired, revoked or unknown. Give keystrata a new token.' };
      }
      throw new CmkProviderError('permission_denied', `the token may not read the transit key ${this.key} (the health check needs read on it)`);
    }
    if (key.status === 404) {
      const detail = saysNoRoute(key)
        ? `nothing is mounted at "${this.settings.mount}" (wrong mount or namespace, or the transit engine was disabled, which deletes its keys)`
        : `Vault has no transit key ${this.key}: it was deleted (only a transit backup of the key can bring it back) or never existed`;
      return { state: 'key_deleted', currentVersion: null, detail };
    }
    throw commonFailure(key, this.where) ?? new CmkProviderError('unreachable', `Vault at ${this.where} could not describe the key (${vaultMessage(key)})`);
  }

  async close(): Promise<void> {
    this.http.close();
  }

  /** API path of an operation on this key, below /v1/. */
  private path(operation: 'encrypt' | 'decrypt' | 'keys'): string {
    const mount = this.settings.mount.split('/').map(encodeURIComponent).join('/');
    return `${mount}/${operation}/${encodeURIComponent(this.settings.keyName)}`;
  }

  private describeKey(data: Readonly<Record<string, unknown>>, tokenNote: string | undefined): CmkDescription {
    const latest = data.latest_version;
    const type = typeof data.type === 'string' ? data.type : 'unknown';
    const notes = [`type ${type}`];
    if (!AEAD_TYPES.has(type)) notes.push('this type cannot bind associated data, so keystrata cannot wrap with it');
    if (data.derived === true) notes.push('a derived key needs a per-request context, which keystrata does not send: it cannot wrap with it');
    if (data.deletion_allowed === true) notes.push('deletion_allowed is true: deleting the key would destroy everything it wraps');
    if (tokenNote !== undefined) notes.push(tokenNote);
    return {
      state: 'healthy',
      currentVersion: typeof latest === 'number' && latest >= 1 ? String(latest) : null,
      // Transit keys have no expiry date (auto_rotate_period only adds versions).
      expiresAt: null,
      detail: notes.join('; '),
    };
  }

  /** What lookup-self says about the token, for describe's detail (its answer also holds the token id: only expire_time is read). */
  private tokenNote(self: VaultAnswer): string | undefined {
    if (self.status === 403) return 'the token may not look itself up (it lacks Vault\'s default policy), so an expired token cannot be told from a missing policy';
    const expiry = self.status === 200 ? self.data?.expire_time : undefined;
    if (typeof expiry !== 'string') return undefined;
    const at = new Date(expiry);
    if (Number.isNaN(at.getTime()) || at.getTime() - Date.now() > TOKEN_WARNING_MS) return undefined;
    return `the Vault token expires at ${at.toISOString()}: renew it or give keystrata a new one before then`;
  }

  private async wrapFailure(answer: VaultAnswer, signal: AbortSignal | undefined): Promise<Error> {
    const common = commonFailure(answer, this.where);
    if (common) return common;
    if (answer.status === 403) return this.forbidden('encrypt', answer, signal);
    if (answer.status === 404) return this.noRoute(answer);
    const message = vaultMessage(answer);
    // With disable_upsert set, or a token that may create keys but the key is missing.
    if (message.includes('encryption key not found')) return new CmkProviderError('key_not_found', `Vault has no transit key ${this.key}`);
    if (message.includes('non-AEAD cipher suite')) {
      return unsuitableKey(this.settings.keyName, 'its type cannot bind associated data (use aes256-gcm96, chacha20-poly1305 or xchacha20-poly1305)');
    }
    if (message.includes('context')) return unsuitableKey(this.settings.keyName, 'it is a derived key (derived=true), which needs a per-request context; use a key without derivation');
    return unsuitableKey(this.settings.keyName, `Vault refused to encrypt with it (${message})`);
  }

  private async unwrapFailure(answer: VaultAnswer, version: string, signal: AbortSignal | undefined): Promise<Error> {
    const common = commonFailure(answer, this.where);
    if (common) return common;
    if (answer.status === 403) return this.forbidden('decrypt', answer, signal);
    if (answer.status === 404) return this.noRoute(answer);
    const message = vaultMessage(answer);
    // keystrata only unwraps what this key wrapped (the config passed a live round trip before it
    // was saved), so a key that is gone now was deleted: its ciphertexts are lost.
    if (message.includes('encryption key not found')) {
      return new CmkProviderError('key_destroyed', `the transit key ${this.key} was deleted; what it wrapped is lost unless the key is restored from a transit backup`);
    }
    if (message.includes(TOO_OLD)) return this.retiredVersion(version, signal);
    if (message.includes('version is too new')) {
      return new CmkProviderError(
        'key_destroyed',
        `the transit key ${this.key} has no version ${version}: the key that wrapped this was deleted and another was created under its name; it is lost unless restored from a transit backup`,
      );
    }
    if (saysBadCiphertext(answer)) return new CmkProviderError('invalid_ciphertext', `Vault could not decrypt the wrapped key with ${this.key} (${message})`);
    return new CmkProviderError('invalid_ciphertext', `Vault refused to decrypt with ${this.key} (${message})`);
  }

  /**
   * Vault answers 403 both for a bad token and for a policy that does not allow the call (and, for
   * encrypt, for a missing key when the token may not create keys). The token's lookup-self, which
   * Vault's default policy allows every token, tells them apart; then a read of the key tells a
   * missing key from a missing permission.
   */
  private async forbidden(operation: 'encrypt' | 'decrypt', answer: VaultAnswer, signal: AbortSignal | undefined): Promise<Error> {
    if (saysInvalidToken(answer)) return this.tokenRejected();
    const self = await this.http.call('GET', 'auth/token/lookup-self', undefined, signal);
    if (self.status === 403) return this.tokenRejected();
    const selfFailure = commonFailure(self, this.where);
    if (selfFailure) return selfFailure;
    if (operation === 'encrypt') {
      const key = await this.http.call('GET', this.path('keys'), undefined, signal);
      if (key.status === 404) return saysNoRoute(key) ? this.noRoute(key) : new CmkProviderError('key_not_found', `Vault has no transit key ${this.key}`);
      const keyFailure = commonFailure(key, this.where);
      if (keyFailure) return keyFailure;
    }
    return new CmkProviderError('permission_denied', `the token's policy does not allow ${operation} with the transit key ${this.key} (it needs update on ${this.settings.mount}/${operation}/${this.settings.keyName})`);
  }

  private tokenRejected(): CmkProviderError {
    return new CmkProviderError('credentials_rejected', `Vault at ${this.where} rejected the token (expired, revoked or unknown; or, if it lacks Vault's default policy, lookup-self is denied too)`);
  }

  private noRoute(answer: VaultAnswer): CmkProviderError {
    return new CmkProviderError('key_not_found', `Vault at ${this.where} has nothing mounted at "${this.settings.mount}" (${vaultMessage(answer)}): check mount and namespace`);
  }

  /** A version below min_decryption_version: retired (reversible) unless trimmed away (gone). */
  private async retiredVersion(version: string, signal: AbortSignal | undefined): Promise<Error> {
    const key = await this.http.call('GET', this.path('keys'), undefined, signal).catch(() => undefined);
    const data = key?.status === 200 ? key.data : undefined;
    const minAvailable = typeof data?.min_available_version === 'number' ? data.min_available_version : undefined;
    const minDecryption = typeof data?.min_decryption_version === 'number' ? data.min_decryption_version : undefined;
    if (minAvailable !== undefined && minAvailable > Number(version)) {
      return new CmkProviderError('key_destroyed', `version ${version} of the transit key ${this.key} was trimmed (min_available_version ${minAvailable}); what it wrapped is lost`);
    }
    const floor = minDecryption === undefined ? '' : ` (${minDecryption})`;
    return new CmkProviderError(
      'key_disabled',
      `version ${version} of the transit key ${this.key} is below its min_decryption_version${floor}: set min_decryption_version to ${version} or lower to use it again`,
    );
  }
}

export const vaultTransitProviderFactory: CmkProviderFactory = {
  name: VAULT_TRANSIT_PROVIDER,
  configSchema: VaultTransitConfig,
  secretFields: ['token'],
  open(config) {
    // Parsing only: the agent connects on the first call.
    return new VaultTransitProvider(parseVaultTransitConfig(config));
  },
};
