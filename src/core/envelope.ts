import { NONCE_LENGTH, SEAL_OVERHEAD, open, sealInto } from './aead.js';
import { idFromBytes, idToBytes } from './bytes.js';

/**
 * The ks1 envelope: keystrata's one ciphertext format (docs/envelope.md).
 *
 *   text   = "ks1:" base64url(binary)           (no padding)
 *   binary = header ‖ nonce(12) ‖ ciphertext ‖ tag(16)
 *   header = version(1)=0x01 ‖ scopeKind(1) ‖ keyId(16) ‖ scopeIdLength(2, big-endian) ‖ scopeId(UTF-8)
 *
 * keyId names the key that sealed the payload (job key, hourly key, connection key, log key or an
 * object version's data key); the store knows that key's parent, so decryption needs nothing else.
 * Only the leaf key id is recorded, not the whole path: parents change when keys are re-wrapped
 * (EK rotation, CMK replacement) and a recorded path would go stale.
 *
 * The AAD is "ks1" ‖ 0x00 ‖ header ‖ binding, where binding = workspace id ‖ environment id ‖
 * context digest (32 zero bytes when there is no key context). The header is authenticated, so
 * changing the scope, the key id or the version byte breaks the tag; the binding is supplied by the
 * caller from the request, so a ciphertext moved to another workspace, environment or key context
 * fails to decrypt even if an attacker could make the same key id resolve there.
 */

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_PREFIX = 'ks1:';
export const MAX_SCOPE_ID_BYTES = 512;
const HEADER_FIXED = 1 + 1 + 16 + 2;
const AAD_LABEL = Buffer.from('ks1\0', 'latin1');
export const CONTEXT_DIGEST_LENGTH = 32;
const NO_CONTEXT = Buffer.alloc(CONTEXT_DIGEST_LENGTH);

export const SCOPE_KINDS = ['job', 'event', 'connection', 'log', 'object'] as const;
export type ScopeKind = (typeof SCOPE_KINDS)[number];
const SCOPE_CODE: Readonly<Record<ScopeKind, number>> = { job: 1, event: 2, connection: 3, log: 4, object: 5 };

export interface EnvelopeHeader {
  readonly scopeKind: ScopeKind;
  readonly scopeId: string;
  /** Id (UUID) of the key that sealed the payload. */
  readonly keyId: string;
}

/** What the AAD binds besides the header: where the ciphertext belongs. */
export interface EnvelopeBinding {
  readonly workspaceId: string;
  readonly environmentId: string;
  /** SHA-256 of the canonical key context (32 bytes), or undefined when there is none. */
  readonly contextDigest?: Uint8Array | undefined;
}

/**
 * The binding bytes depend only on the workspace, environment and context, so callers on a hot
 * path compute them once (bindingBytes) and pass them to sealEnvelope/openEnvelope.
 */
export function bindingBytes(binding: EnvelopeBinding): Buffer {
  const digest = binding.contextDigest ?? NO_CONTEXT;
  if (digest.length !== CONTEXT_DIGEST_LENGTH) throw new RangeError('context digest must be 32 bytes');
  return Buffer.concat([idToBytes(binding.workspaceId), idToBytes(binding.environmentId), digest]);
}

const LONE_SURROGATE = /\p{Cs}/u;

// Key ids are public and an environment uses few of them at a time; their 16-byte form is
// memoised (bounded) so the hot path does not re-parse the UUID text for every record.
const keyIdBytesMemo = new Map<string, Buffer>();
function keyIdBytes(keyId: string): Buffer {
  let bytes = keyIdBytesMemo.get(keyId);
  if (bytes === undefined) {
    bytes = idToBytes(keyId);
    if (keyIdBytesMemo.size >= 4096) keyIdBytesMemo.clear();
    keyIdBytesMemo.set(keyId, bytes);
  }
  return bytes;
}

/** Writes the header into `out`; `scopeIdLength` is Buffer.byteLength(header.scopeId). */
function encodeHeader(header: EnvelopeHeader, scopeIdLength: number, out: Buffer): void {
  // UTF-8 encoding would turn a lone surrogate into U+FFFD, giving two scope ids one encoding.
  if (LONE_SURROGATE.test(header.scopeId)) throw new RangeError('scope id is not well-formed Unicode');
  if (scopeIdLength > MAX_SCOPE_ID_BYTES) throw new RangeError('scope id too long');
  out[0] = ENVELOPE_VERSION;
  out[1] = SCOPE_CODE[header.scopeKind];
  keyIdBytes(header.keyId).copy(out, 2);
  out.writeUInt16BE(scopeIdLength, 18);
  out.write(header.scopeId, HEADER_FIXED, scopeIdLength, 'utf8');
}

function aadFor(header: Uint8Array, binding: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(AAD_LABEL.length + header.length + binding.length);
  AAD_LABEL.copy(aad, 0);
  aad.set(header, AAD_LABEL.length);
  aad.set(binding, AAD_LABEL.length + header.length);
  return aad;
}

/** Seal plaintext under `key` and return the binary envelope. */
export function sealEnvelope(key: Uint8Array, header: EnvelopeHeader, binding: Uint8Array, plaintext: Uint8Array): Buffer {
  const scopeIdLength = Buffer.byteLength(header.scopeId, 'utf8');
  const headerLength = HEADER_FIXED + scopeIdLength;
  const out = Buffer.allocUnsafe(headerLength + SEAL_OVERHEAD + plaintext.length);
  encodeHeader(header, scopeIdLength, out);
  const aad = aadFor(out.subarray(0, headerLength), binding);
  sealInto(key, plaintext, aad, out, headerLength);
  return out;
}

export interface ParsedEnvelope {
  readonly header: EnvelopeHeader;
  /** Bytes of the encoded header (authenticated as part of the AAD). */
  readonly headerBytes: Buffer;
  /** nonce ‖ ciphertext ‖ tag */
  readonly sealed: Buffer;
}

/**
 * The scope id, or undefined unless the bytes are the canonical UTF-8 of a string, so that one
 * scope id has exactly one encoding. ASCII (the usual case) is canonical by construction; anything
 * else is decoded and re-encoded to compare.
 */
function decodeScopeId(bytes: Buffer): string | undefined {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return bytes.toString('latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/**
 * Parse a binary envelope without decrypting. Returns undefined for anything malformed; it never
 * throws on attacker-controlled input.
 */
export function parseEnvelope(binary: Buffer): ParsedEnvelope | undefined {
  if (binary.length < HEADER_FIXED + SEAL_OVERHEAD) return undefined;
  if (binary[0] !== ENVELOPE_VERSION) return undefined;
  const scopeKind = SCOPE_KINDS[binary[1]! - 1];
  if (scopeKind === undefined) return undefined;
  const scopeIdLength = binary.readUInt16BE(18);
  if (scopeIdLength > MAX_SCOPE_ID_BYTES) return undefined;
  const headerLength = HEADER_FIXED + scopeIdLength;
  if (binary.length < headerLength + SEAL_OVERHEAD) return undefined;
  const scopeIdBytes = binary.subarray(HEADER_FIXED, headerLength);
  const scopeId = decodeScopeId(scopeIdBytes);
  if (scopeId === undefined) return undefined;
  return {
    header: { scopeKind, scopeId, keyId: idFromBytes(binary.subarray(2, 18)) },
    headerBytes: binary.subarray(0, headerLength),
    sealed: binary.subarray(headerLength),
  };
}

/** Open a parsed envelope with the key its header names. Undefined on any authentication failure. */
export function openEnvelope(key: Uint8Array, parsed: ParsedEnvelope, binding: Uint8Array): Buffer | undefined {
  if (parsed.sealed.length < NONCE_LENGTH) return undefined;
  return open(key, parsed.sealed, aadFor(parsed.headerBytes, binding));
}

/** "ks1:" + base64url. */
export function envelopeToText(binary: Buffer): string {
  return ENVELOPE_PREFIX + binary.toString('base64url');
}

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE64URL_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64URL_ALPHABET.length; i++) BASE64URL_VALUE[BASE64URL_ALPHABET.charCodeAt(i)] = i;

/**
 * The binary form of a ks1 text, or undefined if it is not one. Only the canonical text of an
 * envelope is accepted (one envelope, one text). Node's decoder is lenient in three ways, each
 * closed here without re-encoding the whole body: it skips characters outside the alphabet (the
 * output is then shorter than the length implies), it also accepts "+", "/" and "=", and it
 * ignores the unused low bits of the last character ("AB" and "AA" both decode to 0x00).
 */
export function envelopeFromText(text: string): Buffer | undefined {
  if (!text.startsWith(ENVELOPE_PREFIX)) return undefined;
  const body = text.slice(ENVELOPE_PREFIX.length);
  const tail = body.length % 4;
  if (tail === 1) return undefined;
  if (body.includes('+') || body.includes('/') || body.includes('=')) return undefined;
  const binary = Buffer.from(body, 'base64url');
  if (binary.length !== Math.floor((body.length * 3) / 4)) return undefined;
  if (tail !== 0) {
    const last = BASE64URL_VALUE[body.charCodeAt(body.length - 1)] ?? -1;
    if (last < 0 || (last & (tail === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  }
  return binary;
}
