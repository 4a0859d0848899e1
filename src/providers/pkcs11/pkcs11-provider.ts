import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { KEY_LENGTH, zeroize } from '../../core/bytes.js';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';
import { CmkProviderError, type CallOptions, type CmkDescription, type CmkProvider, type CmkProviderFactory, type WrapResult } from '../provider.js';
import { decryptGcm, encryptGcm, findAesKeys, GCM_IV_LENGTH, GCM_TAG_LENGTH, type Handle, type KeyObject } from './cryptoki.js';
import { leaseCryptoki, type CryptokiLease } from './cryptoki-host.js';
import { ckrOf, providerErrorOf, SESSION_LOST } from './pkcs11-errors.js';
import { TokenSession } from './token-session.js';

/**
 * A CMK in a PKCS#11 token (an HSM, or SoftHSM2): an AES key found by label on a token found by
 * label, used through the PKCS#11 library the operator installed. The EK is wrapped with AES-GCM
 * inside the token (C_Encrypt with CKM_AES_GCM, a random 96-bit IV of ours, the EK's AAD as GCM
 * associated data, a 128-bit tag), stored as IV ‖ ciphertext ‖ tag. The key never leaves the token.
 *
 * Versions: every AES key under the label is a version, named by its CKA_ID (hex); the greatest
 * CKA_ID is the current one (rotation = generate a new key with the same label and a greater id).
 * Unwrap uses the version recorded with the wrapped key.
 */

export const PKCS11_PROVIDER = 'pkcs11';

export const Pkcs11Config = Type.Object(
  {
    module: Type.String({
      minLength: 2,
      maxLength: 4096,
      pattern: '^/',
      description: 'Absolute path of the PKCS#11 library to load, e.g. /usr/lib/softhsm/libsofthsm2.so. It must be one of the modules the keystrata operator allows.',
    }),
    tokenLabel: Type.String({ minLength: 1, maxLength: 32, description: 'Label of the token (HSM partition) that holds the key, as set when it was initialized.' }),
    pin: Type.String({ minLength: 1, maxLength: 256, description: 'User PIN of the token (CKU_USER). Secret: stored sealed, never returned.' }),
    keyLabel: Type.String({ minLength: 1, maxLength: 256, description: 'CKA_LABEL of the AES key(s) to use; each key under this label is a version, named by its CKA_ID.' }),
  },
  { additionalProperties: false },
);

export type Pkcs11ProviderConfig = Static<typeof Pkcs11Config>;

export interface Pkcs11FactoryOptions {
  /**
   * The PKCS#11 libraries customers may name. A module is native code loaded into keystrata's
   * process: a customer must never be able to make keystrata load a library of their choosing.
   */
  readonly allowedModules: readonly string[];
}

/** CKA_ID as a version string: hex, or "none" for a key without an id. */
function versionOf(id: Buffer): string {
  return id.length === 0 ? 'none' : id.toString('hex');
}

function idOf(version: string): Buffer | null {
  if (version === 'none') return Buffer.alloc(0);
  return /^(?:[0-9a-f]{2})+$/.test(version) ? Buffer.from(version, 'hex') : null;
}

/** CKA_IDs compared as unsigned big-endian numbers (leading zero bytes ignored). */
function compareIds(a: Buffer, b: Buffer): number {
  const strip = (id: Buffer) => {
    const first = id.findIndex((byte) => byte !== 0);
    return first === -1 ? id.subarray(id.length) : id.subarray(first);
  };
  const [x, y] = [strip(a), strip(b)];
  return x.length - y.length || Buffer.compare(x, y);
}

function newest(keys: readonly KeyObject[]): KeyObject | undefined {
  return keys.reduce<KeyObject | undefined>((best, key) => (best === undefined || compareIds(key.id, best.id) > 0 ? key : best), undefined);
}

function abandoned(): CmkProviderError {
  return new CmkProviderError('timeout', 'pkcs11 call abandoned: its deadline passed');
}

const SEALED_LENGTH = GCM_IV_LENGTH + KEY_LENGTH + GCM_TAG_LENGTH;

class Pkcs11Provider implements CmkProvider {
  readonly name = PKCS11_PROVIDER;
  private state: { readonly lease: CryptokiLease; readonly token: TokenSession } | null = null;
  private connecting: Promise<TokenSession> | null = null;
  private closed = false;

  constructor(private readonly config: Pkcs11ProviderConfig) {}

  private get where(): string {
    return `key "${this.config.keyLabel}" on token "${this.config.tokenLabel}"`;
  }

  async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
    const signal = options?.signal;
    return this.onToken(signal, `wrap with ${this.where}`, async (token, session) => {
      const current = newest(await findAesKeys(token.host, session, this.config.keyLabel));
      if (current === undefined) throw new CmkProviderError('key_not_found', `pkcs11: no AES key labelled "${this.config.keyLabel}" on token "${this.config.tokenLabel}"`);
      if (signal?.aborted) throw abandoned();
      const iv = randomBytes(GCM_IV_LENGTH);
      const sealed = await encryptGcm(token.host, session, current.handle, iv, aad, key);
      return { ciphertext: Buffer.concat([iv, sealed]), keyVersion: versionOf(current.id) };
    });
  }

  async unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
    const signal = options?.signal;
    if (ciphertext.length !== SEALED_LENGTH) throw new CmkProviderError('invalid_ciphertext', `pkcs11: a wrapped key is ${SEALED_LENGTH} bytes, not ${ciphertext.length}`);
    const id = keyVersion === null ? undefined : idOf(keyVersion);
    if (id === null) throw new CmkProviderError('key_not_found', `pkcs11: "${keyVersion}" is not a PKCS#11 key version (a hex CKA_ID)`);
    const operation = `unwrap with ${this.where}`;
    return this.onToken(signal, operation, async (token, session) => {
      const keys = await findAesKeys(token.host, session, this.config.keyLabel, id);
      const key = id === undefined ? newest(keys) : keys[0];
      if (key === undefined) {
        throw id === undefined
          ? new CmkProviderError('key_not_found', `pkcs11: no AES key labelled "${this.config.keyLabel}" on token "${this.config.tokenLabel}"`)
          : new CmkProviderError('key_destroyed', `pkcs11: version ${keyVersion} of ${this.where} no longer exists (destroyed, or the config names another key): what it wrapped cannot be unwrapped`);
      }
      if (signal?.aborted) throw abandoned();
      let plain: Buffer;
      try {
        plain = await decryptGcm(token.host, session, key.handle, ciphertext.subarray(0, GCM_IV_LENGTH), aad, ciphertext.subarray(GCM_IV_LENGTH));
      } catch (error) {
        // Only here does a refusal mean "this ciphertext does not open" rather than a device fault.
        throw SESSION_LOST.has(ckrOf(error)) ? error : providerErrorOf(error, operation, true);
      }
      if (signal?.aborted) {
        // Nobody is waiting for it any more.
        zeroize(plain);
        throw abandoned();
      }
      return plain;
    });
  }

  async describe(options?: CallOptions): Promise<CmkDescription> {
    let keys: KeyObject[];
    try {
      keys = await this.onToken(options?.signal, `describe of ${this.where}`, (token, session) => findAesKeys(token.host, session, this.config.keyLabel));
    } catch (error) {
      if (error instanceof CmkProviderError && error.reason === 'credentials_rejected') return { state: 'credentials_expired', currentVersion: null, detail: error.message };
      throw error;
    }
    const current = newest(keys);
    if (current === undefined) {
      // PKCS#11 keeps no trace of a destroyed object: "gone" and "never there" look the same.
      return { state: 'key_deleted', currentVersion: null, detail: `no AES key labelled "${this.config.keyLabel}" on token "${this.config.tokenLabel}" (destroyed, or never created)` };
    }
    const currentVersion = versionOf(current.id);
    if (!current.encrypt || !current.decrypt) {
      const off = [current.encrypt ? null : 'CKA_ENCRYPT', current.decrypt ? null : 'CKA_DECRYPT'].filter((name) => name !== null).join(' and ');
      return { state: 'key_disabled', currentVersion, detail: `${off} of version ${currentVersion} is false` };
    }
    return { state: 'healthy', currentVersion };
  }

  async close(): Promise<void> {
    this.closed = true;
    const state = this.state;
    this.state = null;
    if (state === null) return;
    let timer: NodeJS.Timeout | undefined;
    // A module blocked in a call would hold the session's queue: do not wait for it forever.
    await Promise.race([state.token.close().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 3000)))]);
    clearTimeout(timer);
    await state.lease.release();
  }

  /** Runs `work` on this provider's session; every failure comes out as a CmkProviderError. */
  private async onToken<T>(signal: AbortSignal | undefined, operation: string, work: (token: TokenSession, session: Handle) => Promise<T>): Promise<T> {
    try {
      const token = await this.token();
      return await token.run(signal, (session) => work(token, session));
    } catch (error) {
      throw providerErrorOf(error, operation);
    }
  }

  /** The session on the module, leasing the module on first use (open() never loads it). */
  private async token(): Promise<TokenSession> {
    if (this.closed) throw new CmkProviderError('unreachable', 'pkcs11 provider is closed');
    if (this.state !== null && !this.state.lease.host.dead) return this.state.token;
    if (this.state !== null) {
      // The module's thread is gone: let go of it; the next lease loads the module again.
      const dead = this.state;
      this.state = null;
      void dead.lease.release();
    }
    this.connecting ??= (async () => {
      try {
        const lease = await leaseCryptoki(this.config.module);
        if (this.closed) {
          await lease.release();
          throw new CmkProviderError('unreachable', 'pkcs11 provider is closed');
        }
        this.state = { lease, token: new TokenSession(lease.host, this.config.tokenLabel, this.config.pin) };
        return this.state.token;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }
}

export function pkcs11ProviderFactory(options: Pkcs11FactoryOptions): CmkProviderFactory {
  const allowed = new Set(options.allowedModules);
  return {
    name: PKCS11_PROVIDER,
    configSchema: Pkcs11Config,
    secretFields: ['pin'],
    open(config) {
      const parsed = checkConfig(Pkcs11Config, config, PKCS11_PROVIDER);
      if (!allowed.has(parsed.module)) {
        throw new KeystrataError('configuration_invalid', 'The pkcs11 CMK config is invalid at "module" (not a PKCS#11 module this keystrata allows).', { field: 'module' });
      }
      return new Pkcs11Provider(parsed);
    },
  };
}
