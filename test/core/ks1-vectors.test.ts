import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import {
  SCOPE_KINDS,
  bindingBytes,
  envelopeFromText,
  envelopeToText,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
  type ScopeKind,
} from '../../src/core/envelope.js';
import { canonicalContext, contextDigest } from '../../src/core/key-context.js';
import { WRAPPED_KEY_LENGTH, unwrapKey, wrapKey } from '../../src/core/wrapped-key.js';
import { injectedNonces } from '../support/fixed-nonce.js';

/*
 * Known-answer vectors for the ks1 envelope and the wrapped-key format (docs/envelope.md), in
 * ks1-vectors.json. They were generated once with node:crypto and a fixed nonce, following the
 * document. Each vector is checked three ways: our decoder opens it; an independent node:crypto
 * construction in this file re-derives it byte for byte; and our own sealers, given the vector's
 * nonce, produce it byte for byte.
 */

// Lets a test hand the next fillNonce call (the AEAD nonce) a fixed value; otherwise the real one runs.
vi.mock('../../src/core/nonce.js', () => import('../support/fixed-nonce.js').then((m) => m.fixedNonceModule()));

interface EnvelopeVector {
  readonly name: string;
  readonly key: string;
  readonly workspaceId: string;
  readonly environmentId: string;
  readonly context: Readonly<Record<string, string>> | null;
  readonly canonicalContext: string | null;
  readonly contextDigest: string | null;
  readonly scopeKind: ScopeKind;
  readonly scopeId: string;
  readonly keyId: string;
  readonly nonce: string;
  readonly plaintext: string;
  readonly text: string;
}

interface WrappedKeyVector {
  readonly name: string;
  readonly parentKey: string;
  readonly childKey: string;
  readonly environmentId: string;
  readonly keyId: string;
  readonly kind: string;
  readonly parentId: string;
  readonly nonce: string;
  readonly wrapped: string;
}

interface VectorFile {
  readonly envelopes: readonly EnvelopeVector[];
  readonly wrappedKeys: readonly WrappedKeyVector[];
}

const vectors = JSON.parse(readFileSync(new URL('./ks1-vectors.json', import.meta.url), 'utf8')) as VectorFile;

const hex = (value: string): Buffer => Buffer.from(value, 'hex');
const uuidBytes = (id: string): Buffer => Buffer.from(id.replace(/-/g, ''), 'hex');

// ---- independent construction from docs/envelope.md, node:crypto only ----

const SCOPE_CODES: Readonly<Record<ScopeKind, number>> = { job: 1, event: 2, connection: 3, log: 4, object: 5 };

function gcmSeal(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function referenceEnvelopeText(v: EnvelopeVector): string {
  const scopeId = Buffer.from(v.scopeId, 'utf8');
  const header = Buffer.alloc(20 + scopeId.length);
  header[0] = 0x01;
  header[1] = SCOPE_CODES[v.scopeKind];
  uuidBytes(v.keyId).copy(header, 2);
  header.writeUInt16BE(scopeId.length, 18);
  scopeId.copy(header, 20);
  const digest = v.contextDigest === null ? Buffer.alloc(32) : hex(v.contextDigest);
  const aad = Buffer.concat([Buffer.from([0x6b, 0x73, 0x31, 0x00]), header, uuidBytes(v.workspaceId), uuidBytes(v.environmentId), digest]);
  const nonce = hex(v.nonce);
  const binary = Buffer.concat([header, nonce, gcmSeal(hex(v.key), nonce, aad, hex(v.plaintext))]);
  return `ks1:${binary.toString('base64url')}`;
}

function referenceWrapped(v: WrappedKeyVector): Buffer {
  const aad = Buffer.concat([
    Buffer.from('ks-wrap\0', 'latin1'),
    Buffer.of(0x01),
    uuidBytes(v.environmentId),
    uuidBytes(v.keyId),
    Buffer.from(`${v.kind}\0`, 'utf8'),
    uuidBytes(v.parentId),
  ]);
  const nonce = hex(v.nonce);
  return Buffer.concat([Buffer.of(0x01), nonce, gcmSeal(hex(v.parentKey), nonce, aad, hex(v.childKey))]);
}

function bindingOf(v: EnvelopeVector): Buffer {
  return bindingBytes({
    workspaceId: v.workspaceId,
    environmentId: v.environmentId,
    contextDigest: v.contextDigest === null ? undefined : hex(v.contextDigest),
  });
}

describe('ks1 known-answer vectors (ks1-vectors.json)', () => {
  it('cover every scope kind, empty plaintext, a key context and a multi-byte UTF-8 scope id', () => {
    const envs = vectors.envelopes;
    expect(envs.length).toBeGreaterThanOrEqual(6);
    expect(new Set(envs.map((v) => v.scopeKind))).toEqual(new Set(SCOPE_KINDS));
    expect(envs.some((v) => v.plaintext === '')).toBe(true);
    expect(envs.some((v) => v.contextDigest !== null)).toBe(true);
    expect(envs.some((v) => Buffer.byteLength(v.scopeId, 'utf8') > v.scopeId.length)).toBe(true);
    expect(vectors.wrappedKeys.length).toBeGreaterThan(0);
  });

  describe.each(vectors.envelopes.map((v) => [v.name, v] as const))('envelope: %s', (_name, v) => {
    it('the context digest is SHA-256 of the documented canonical context', () => {
      if (v.context === null) {
        expect(v.contextDigest).toBeNull();
        return;
      }
      expect(canonicalContext(v.context)).toBe(v.canonicalContext);
      expect(contextDigest(v.context).toString('hex')).toBe(v.contextDigest);
    });

    it('envelopeFromText → parseEnvelope → openEnvelope gives the plaintext and the header', () => {
      const binary = envelopeFromText(v.text);
      expect(binary).toBeDefined();
      const parsed = parseEnvelope(binary!);
      expect(parsed?.header).toEqual({ scopeKind: v.scopeKind, scopeId: v.scopeId, keyId: v.keyId });
      const plaintext = openEnvelope(hex(v.key), parsed!, bindingOf(v));
      expect(plaintext?.toString('hex')).toBe(v.plaintext);
    });

    it('the documented construction (node:crypto, fixed nonce) re-derives the exact text', () => {
      expect(referenceEnvelopeText(v)).toBe(v.text);
    });

    it('sealEnvelope with the vector nonce produces the exact text', () => {
      injectedNonces.push(hex(v.nonce));
      const binary = sealEnvelope(hex(v.key), { scopeKind: v.scopeKind, scopeId: v.scopeId, keyId: v.keyId }, bindingOf(v), hex(v.plaintext));
      expect(injectedNonces).toEqual([]);
      expect(envelopeToText(binary)).toBe(v.text);
    });

    it('a one-bit change anywhere in the binary stops it opening', () => {
      const binary = envelopeFromText(v.text)!;
      for (let i = 0; i < binary.length; i += 1) {
        const mutated = Buffer.from(binary);
        mutated[i]! ^= 0x01;
        const parsed = parseEnvelope(mutated);
        if (parsed !== undefined) expect(openEnvelope(hex(v.key), parsed, bindingOf(v))).toBeUndefined();
      }
    });
  });

  describe.each(vectors.wrappedKeys.map((v) => [v.name, v] as const))('wrapped key: %s', (_name, v) => {
    const binding = { environmentId: v.environmentId, keyId: v.keyId, kind: v.kind, parentId: v.parentId };

    it('unwrapKey gives the child key', () => {
      expect(hex(v.wrapped)).toHaveLength(WRAPPED_KEY_LENGTH);
      expect(unwrapKey(hex(v.parentKey), hex(v.wrapped), binding)?.toString('hex')).toBe(v.childKey);
    });

    it('the documented construction (node:crypto, fixed nonce) re-derives the exact bytes', () => {
      expect(referenceWrapped(v).toString('hex')).toBe(v.wrapped);
    });

    it('wrapKey with the vector nonce produces the exact bytes', () => {
      injectedNonces.push(hex(v.nonce));
      const wrapped = wrapKey(hex(v.parentKey), hex(v.childKey), binding);
      expect(injectedNonces).toEqual([]);
      expect(wrapped.toString('hex')).toBe(v.wrapped);
    });
  });
});
