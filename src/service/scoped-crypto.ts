import { bindingBytes, envelopeFromText, envelopeToText, openEnvelope, parseEnvelope, sealEnvelope } from '../core/envelope.js';
import { contextDigest, type KeyContext } from '../core/key-context.js';
import { decryptionFailed, isKeystrataError } from '../errors.js';
import type { KeyKind } from '../store/store.js';
import type { KeyHierarchy, ScopedKeyRequest } from './key-hierarchy.js';
import type { EnvironmentContext } from './workspaces.js';

/** The data-plane scopes of POST …/encrypt and …/decrypt. */
export type DataScopeType = 'job' | 'event' | 'connection' | 'log';

export interface DataScope {
  readonly type: DataScopeType;
  readonly id: string;
}

/**
 * Which key seals each scope (DESIGN §1). `boundToKey`: the key belongs to one scope id (a job's
 * key, a connection's key), so a ciphertext naming another id under it is rejected even before the
 * AAD check; hourly and log keys are shared by many scope ids, which the AAD alone separates.
 */
const SCOPE_KEYS: Readonly<Record<DataScopeType, { readonly keyKind: KeyKind; readonly boundToKey: boolean; request(id: string): ScopedKeyRequest }>> = {
  job: { keyKind: 'job', boundToKey: true, request: (id) => ({ kind: 'job', scopeId: id }) },
  event: { keyKind: 'hourly', boundToKey: false, request: () => ({ kind: 'hourly' }) },
  connection: { keyKind: 'connection', boundToKey: true, request: (id) => ({ kind: 'connection', scopeId: id }) },
  log: { keyKind: 'log', boundToKey: false, request: () => ({ kind: 'log' }) },
};

export interface EncryptResult {
  /** The ks1 envelope in its text form ("ks1:" + base64url), as the HTTP API returns it. */
  readonly ciphertext: string;
  readonly keyId: string;
}

export interface BinaryEncryptResult {
  /** The ks1 envelope in binary form (docs/envelope.md): for callers that store bytes. */
  readonly envelope: Buffer;
  readonly keyId: string;
}

export interface DecryptResult {
  /** Owned by the caller, who should zero it once sent. */
  readonly plaintext: Buffer;
  readonly scope: DataScope;
}

export type ScopedCrypto = ReturnType<typeof createScopedCrypto>;

export function createScopedCrypto(deps: { readonly hierarchy: Pick<KeyHierarchy, 'withScopedKey' | 'withKeyById'> }) {
  const { hierarchy } = deps;

  /**
   * The AAD binding for a request: the environment's precomputed one, or — when the caller binds
   * a key context — one that also carries the context's digest, so that decryption must present
   * the same context (DESIGN §2).
   */
  function bindingFor(env: EnvironmentContext, context: KeyContext | undefined): Buffer {
    if (context === undefined) return env.binding;
    return bindingBytes({ workspaceId: env.workspaceId, environmentId: env.environment.id, contextDigest: contextDigest(context) });
  }

  /** Seal `plaintext` for `scope` under the scope's key (created on first use), optionally bound to a key context. */
  function encryptBinary(env: EnvironmentContext, scope: DataScope, plaintext: Uint8Array, context?: KeyContext): Promise<BinaryEncryptResult> {
    const binding = bindingFor(env, context);
    return hierarchy.withScopedKey(env.environment.id, SCOPE_KEYS[scope.type].request(scope.id), (key) => ({
      envelope: sealEnvelope(key.material, { scopeKind: scope.type, scopeId: scope.id, keyId: key.meta.keyId }, binding, plaintext),
      keyId: key.meta.keyId,
    }));
  }

  /**
   * Open a binary ks1 envelope of this environment. Every way it can fail to belong here —
   * malformed, tampered, another tenant's, another scope's, unknown key — is the same
   * decryption_failed. Failures about the key's availability (key_unavailable, key_destroyed,
   * key_disabled) are reported as such: the caller must learn whether retrying can help.
   */
  async function decryptBinary(env: EnvironmentContext, envelope: Buffer, expected?: DataScope, context?: KeyContext): Promise<DecryptResult> {
    const parsed = parseEnvelope(envelope);
    if (!parsed) throw decryptionFailed('not a well-formed ks1 envelope');
    const { scopeKind, scopeId, keyId } = parsed.header;
    if (scopeKind === 'object') throw decryptionFailed('vault object ciphertext presented to the data-plane decrypt');
    if (expected && (expected.type !== scopeKind || expected.id !== scopeId)) throw decryptionFailed('scope does not match the expected scope');
    const rule = SCOPE_KEYS[scopeKind];
    const binding = bindingFor(env, context);
    try {
      const plaintext = await hierarchy.withKeyById(env.environment.id, keyId, (key) => {
        if (key.meta.kind !== rule.keyKind || (rule.boundToKey && key.meta.scopeId !== scopeId)) {
          throw decryptionFailed(`key ${keyId} (${key.meta.kind}) cannot seal scope ${scopeKind}`);
        }
        return openEnvelope(key.material, parsed, binding);
      });
      if (!plaintext) throw decryptionFailed('authentication tag did not verify');
      return { plaintext, scope: { type: scopeKind, id: scopeId } };
    } catch (error) {
      // An unknown key id is the caller's input, so it is just another decryption failure. A
      // stored key that fails its integrity check is not: that is altered data the operator
      // must hear about, and it is reported as such (500) — callers cannot provoke it.
      if (isKeystrataError(error) && error.code === 'key_not_found') {
        throw decryptionFailed(`key ${keyId}: ${error.code}`, error);
      }
      throw error;
    }
  }

  return {
    encryptBinary,
    decryptBinary,

    /** encryptBinary, returned in the ks1 text form. */
    async encrypt(env: EnvironmentContext, scope: DataScope, plaintext: Uint8Array, context?: KeyContext): Promise<EncryptResult> {
      const { envelope, keyId } = await encryptBinary(env, scope, plaintext, context);
      return { ciphertext: envelopeToText(envelope), keyId };
    },

    /** decryptBinary of a ks1 text. */
    decrypt(env: EnvironmentContext, ciphertext: string, expected?: DataScope, context?: KeyContext): Promise<DecryptResult> {
      const envelope = envelopeFromText(ciphertext);
      if (!envelope) return Promise.reject(decryptionFailed('not a ks1 text'));
      return decryptBinary(env, envelope, expected, context);
    },
  };
}
