/**
 * HS256 JSON Web Tokens (compact JWS, RFC 7515 / RFC 7519) that keystrata issues to API clients and
 * verifies on every request. Zero-dependency on purpose: JWT libraries are a classic source of
 * algorithm-confusion and "alg: none" bugs because they support many algorithms and key types.
 * Here exactly one algorithm exists, the key is always an HMAC key supplied by the caller, and
 * nothing in the token can influence which key or algorithm is used.
 *
 * Verification order matters: length cap → shape → canonical encoding → header (algorithm
 * allow-list) → MAC → payload parse → claims. No payload byte is parsed before the MAC has been
 * checked, so the claim checks below only ever run on data keystrata signed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The claims of a keystrata JWT. Times are integer seconds since the epoch. */
export interface JwtClaims {
  /** Issuer: the keystrata deployment that signed the token. */
  readonly iss: string;
  /** Audience: the keystrata deployment meant to accept it. A single string, never an array. */
  readonly aud: string;
  /** Subject: the API client id. */
  readonly sub: string;
  /** Issued at. */
  readonly iat: number;
  /** Not before (optional). */
  readonly nbf?: number;
  /** Expiry (required: keystrata never issues a token that does not expire). */
  readonly exp: number;
  /** Unique token id, for logs and revocation lists. */
  readonly jti: string;
  /** Id of the API token the JWT was exchanged for; revoking that token must revoke the JWT. */
  readonly tid: string;
}

/**
 * Why a token was rejected. For logs and metrics only: callers answer every JwtError with the same
 * opaque 401, because telling a client *why* its token failed helps an attacker more than it helps
 * an honest client (who simply fetches a new token).
 *
 * - `malformed`: not three canonical base64url segments, too long, or header/payload is not a
 *   strict JSON object (invalid UTF-8, duplicate keys, a `__proto__` key).
 * - `algorithm`: the header asks for anything but plain HS256 (another or missing `alg`, a `crit`
 *   extension, a key reference such as `jku`, `jwk`, `x5u`, `x5c`, `b64`, a `typ` other than
 *   "JWT"). Other header parameters (`kid`, `cty`) are ignored.
 * - `signature`: the MAC does not match (wrong key or tampering).
 * - `expired`, `not_yet_valid`, `lifetime`: time checks, see verifyJwt.
 * - `claims`: a required claim is missing or has the wrong type, or `iss` / `aud` do not match.
 */
export type JwtErrorReason = 'malformed' | 'algorithm' | 'signature' | 'expired' | 'not_yet_valid' | 'lifetime' | 'claims';

/** A rejected token. `reason` is stable; `message` is for operators and never holds token bytes. */
export class JwtError extends Error {
  readonly reason: JwtErrorReason;

  constructor(reason: JwtErrorReason, message: string) {
    super(message);
    this.name = 'JwtError';
    this.reason = reason;
  }
}

/** Tokens longer than this are rejected before any decoding (a request header is not a payload). */
export const JWT_MAX_LENGTH = 4096;

/**
 * RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash output. A shorter key is a
 * configuration error, so it throws a RangeError (a 500), never a JwtError (a 401).
 */
export const JWT_MIN_KEY_LENGTH = 32;

/** Options of verifyJwt. `now` is epoch milliseconds, as Clock.now() returns it. */
export interface JwtVerifyOptions {
  readonly now: number;
  /** Longest accepted `exp - iat`: a token minted with a long life is refused even if still valid. */
  readonly maxLifetimeSeconds: number;
  /** Tolerance for clock differences between issuer and verifier. */
  readonly clockSkewSeconds: number;
  readonly issuer: string;
  readonly audience: string;
}

/** A JSON object as parsed from a token segment. */
export type JsonObject = { readonly [name: string]: unknown };

const HEADER_SEGMENT = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
const SIGNATURE_LENGTH = 32;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** Header parameters that point at keys or demand extensions; honouring any of them would let the
 * token choose its own key or semantics, so their mere presence is a rejection. */
const FORBIDDEN_HEADER_PARAMETERS = ['crit', 'jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'b64', 'zip', 'enc'];
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * A signed token for `claims`, header exactly {"alg":"HS256","typ":"JWT"}. Only the claims named
 * in JwtClaims are serialised, in a fixed order, so an object carrying extra properties at run time
 * cannot smuggle them into a token. Claims that verifyJwt would reject for their type throw.
 *
 * @example
 * const token = signJwt(key, { iss, aud, sub: clientId, iat, exp: iat + 900, jti: newId(), tid });
 */
export function signJwt(key: Buffer, claims: JwtClaims): string {
  checkKey(key);
  const checked = readClaims(claims as unknown as JsonObject);
  if (checked === undefined) throw new TypeError('signJwt: claims have missing or mistyped members');
  if (checked.exp <= checked.iat) throw new TypeError('signJwt: exp must be after iat');
  const payload = Buffer.from(JSON.stringify(checked)).toString('base64url');
  const signingInput = `${HEADER_SEGMENT}.${payload}`;
  return `${signingInput}.${mac(key, signingInput).toString('base64url')}`;
}

/**
 * The claims of a valid token, or a JwtError. Beyond the signature layer (verifyHs256Jws):
 * required claims with exact types (strings non-empty, times non-negative safe integers),
 * `iss` === issuer and `aud` === audience, then, with s = clockSkewSeconds and now in seconds:
 * `exp - iat > maxLifetimeSeconds` → lifetime; `exp <= now - s` → expired;
 * `nbf > now + s` or `iat > now + s` → not_yet_valid. Unknown claims are ignored (RFC 7519 §4)
 * and not returned.
 */
export function verifyJwt(key: Buffer, token: string, options: JwtVerifyOptions): JwtClaims {
  checkOptions(options);
  const { payload } = verifyHs256Jws(key, token);
  const claims = readClaims(payload);
  if (claims === undefined) throw new JwtError('claims', 'missing or mistyped claims');
  if (claims.iss !== options.issuer) throw new JwtError('claims', 'issuer mismatch');
  if (claims.aud !== options.audience) throw new JwtError('claims', 'audience mismatch');
  if (claims.exp <= claims.iat) throw new JwtError('claims', 'exp is not after iat');
  // A stolen long-lived token is the threat: bound the lifetime we accept even from our own key.
  if (claims.exp - claims.iat > options.maxLifetimeSeconds) throw new JwtError('lifetime', 'lifetime exceeds the maximum');
  const now = options.now / 1000;
  const skew = options.clockSkewSeconds;
  if (claims.exp <= now - skew) throw new JwtError('expired', 'token expired');
  if (claims.nbf !== undefined && claims.nbf > now + skew) throw new JwtError('not_yet_valid', 'nbf is in the future');
  // A token "issued" in the future would otherwise live longer than maxLifetimeSeconds from now.
  if (claims.iat > now + skew) throw new JwtError('not_yet_valid', 'iat is in the future');
  return claims;
}

/**
 * The signature layer alone: checks length, shape, canonical encoding, the header allow-list and
 * the HMAC-SHA-256 tag, then parses the payload. Returns header and payload as parsed JSON objects
 * without interpreting any claim. Exported for interoperability tests (RFC 7515 Appendix A.1);
 * application code calls verifyJwt.
 */
export function verifyHs256Jws(key: Buffer, token: string): { header: JsonObject; payload: JsonObject } {
  checkKey(key);
  // Cap before any work: the cost of everything below is linear in the length.
  if (typeof token !== 'string' || token.length > JWT_MAX_LENGTH) throw new JwtError('malformed', 'token missing or too long');
  const segments = token.split('.');
  if (segments.length !== 3) throw new JwtError('malformed', 'not three segments');
  const [headerSegment, payloadSegment, signatureSegment] = segments as [string, string, string];
  const headerBytes = decodeSegment(headerSegment);
  const payloadBytes = decodeSegment(payloadSegment);
  const signature = decodeSegment(signatureSegment);

  const header = parseJsonObject(headerBytes);
  checkHeader(header);

  // Length first: timingSafeEqual throws on unequal lengths, and a tag's length is not secret.
  const expected = mac(key, `${headerSegment}.${payloadSegment}`);
  if (signature.length !== SIGNATURE_LENGTH || !timingSafeEqual(signature, expected)) {
    throw new JwtError('signature', 'signature mismatch');
  }
  return { header, payload: parseJsonObject(payloadBytes) };
}

function mac(key: Buffer, signingInput: string): Buffer {
  return createHmac('sha256', key).update(signingInput, 'ascii').digest();
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length < JWT_MIN_KEY_LENGTH) {
    throw new RangeError(`an HS256 key is at least ${JWT_MIN_KEY_LENGTH} bytes`);
  }
}

function checkOptions(options: JwtVerifyOptions): void {
  const { now, maxLifetimeSeconds, clockSkewSeconds, issuer, audience } = options;
  if (!Number.isFinite(now)) throw new RangeError('verifyJwt: now must be a finite epoch time in ms');
  if (!(maxLifetimeSeconds > 0)) throw new RangeError('verifyJwt: maxLifetimeSeconds must be positive');
  if (!(clockSkewSeconds >= 0) || !Number.isFinite(clockSkewSeconds)) throw new RangeError('verifyJwt: clockSkewSeconds must be >= 0');
  // An empty expected issuer or audience would be a misconfiguration that readClaims then papers over.
  if (typeof issuer !== 'string' || issuer === '' || typeof audience !== 'string' || audience === '') {
    throw new RangeError('verifyJwt: issuer and audience must be non-empty strings');
  }
}

/**
 * Strict base64url: the alphabet only, no padding, and canonical — Node's decoder ignores the
 * unused low bits of the last character, so "AB" and "AA" both decode to 0x00; re-encoding and
 * comparing gives every token exactly one spelling (a mutated token never verifies).
 */
function decodeSegment(segment: string): Buffer {
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) throw new JwtError('malformed', 'segment is not base64url');
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.toString('base64url') !== segment) throw new JwtError('malformed', 'segment is not canonical base64url');
  return bytes;
}

function checkHeader(header: JsonObject): void {
  // An allow-list of one exact string: "none", "None", "HS512", "RS256" (whose "public key" an
  // attacker would make us use as an HMAC secret) and a missing alg all end here.
  if (header['alg'] !== 'HS256') throw new JwtError('algorithm', 'alg is not HS256');
  if (Object.hasOwn(header, 'typ') && header['typ'] !== 'JWT') throw new JwtError('algorithm', 'typ is not JWT');
  for (const name of FORBIDDEN_HEADER_PARAMETERS) {
    if (Object.hasOwn(header, name)) throw new JwtError('algorithm', `header parameter ${name} is not accepted`);
  }
}

/**
 * A JSON object from UTF-8 bytes, strictly: invalid UTF-8, a non-object, a duplicate member name
 * at any depth (RFC 7515 §5.2 allows rejecting them; two parsers could otherwise read two values)
 * and any `__proto__` member name are all `malformed`. JSON.parse itself does not pollute
 * prototypes, but a later Object.assign or merge of the result would; refusing the name closes it.
 */
function parseJsonObject(bytes: Buffer): JsonObject {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw new JwtError('malformed', 'segment is not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError('malformed', 'segment is not a JSON object');
  checkMemberNames(text);
  return value as JsonObject;
}

/**
 * Scans JSON text that JSON.parse has already accepted, so only strings and brackets need tracking:
 * a string right after "{" or "," inside an object is a member name.
 */
function checkMemberNames(text: string): void {
  const scopes: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      if (expectName) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        const names = scopes[scopes.length - 1]!;
        if (name === '__proto__') throw new JwtError('malformed', 'member name __proto__');
        if (names.has(name)) throw new JwtError('malformed', 'duplicate member name');
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      scopes.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      scopes.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      scopes.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = scopes[scopes.length - 1] !== null;
    }
  }
}

/** The claims with exact types, copied into a fresh frozen object, or undefined. */
function readClaims(source: JsonObject): JwtClaims | undefined {
  const get = (name: string): unknown => (Object.hasOwn(source, name) ? source[name] : undefined);
  const iss = get('iss');
  const aud = get('aud');
  const sub = get('sub');
  const iat = get('iat');
  const nbf = get('nbf');
  const exp = get('exp');
  const jti = get('jti');
  const tid = get('tid');
  if (!isText(iss) || !isText(aud) || !isText(sub) || !isText(jti) || !isText(tid)) return undefined;
  if (!isTime(iat) || !isTime(exp) || (nbf !== undefined && !isTime(nbf))) return undefined;
  const claims: JwtClaims = nbf === undefined ? { iss, aud, sub, iat, exp, jti, tid } : { iss, aud, sub, iat, nbf, exp, jti, tid };
  return Object.freeze(claims);
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** NumericDate restricted to what keystrata issues: whole, non-negative, exactly representable. */
function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
