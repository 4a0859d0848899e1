import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomKey } from '../../src/core/bytes.js';
import { JWT_MAX_LENGTH, JwtError, signJwt, verifyHs256Jws, verifyJwt, type JwtClaims, type JwtErrorReason, type JwtVerifyOptions } from '../../src/core/jwt.js';

const key = randomKey();
const NOW = Date.UTC(2026, 0, 1, 12); // ms
const NOW_S = NOW / 1000;
const options: JwtVerifyOptions = { now: NOW, maxLifetimeSeconds: 3600, clockSkewSeconds: 30, issuer: 'https://ks.example', audience: 'ks-api' };
const claims: JwtClaims = {
  iss: 'https://ks.example',
  aud: 'ks-api',
  sub: 'client-1',
  iat: NOW_S - 60,
  exp: NOW_S + 840,
  jti: 'a5c1d5e0-1f4b-4c8e-9b1e-5f0f6c2d9a11',
  tid: 'tok-1',
};

const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');
const hs256 = (k: Buffer, input: string): string => createHmac('sha256', k).update(input).digest('base64url');

/** A token with any header and payload text, HMAC-SHA-256 signed with `k`: lets tests sign what signJwt refuses to. */
function forge(header: string | object, payload: string | object, k: Buffer = key): string {
  const h = b64(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return `${h}.${p}.${hs256(k, `${h}.${p}`)}`;
}
const HEADER = { alg: 'HS256', typ: 'JWT' };

function reasonOf(run: () => unknown): JwtErrorReason | 'accepted' {
  try {
    run();
    return 'accepted';
  } catch (error) {
    if (error instanceof JwtError) return error.reason;
    throw error;
  }
}
const verifyReason = (token: string, opts: Partial<JwtVerifyOptions> = {}, k: Buffer = key) =>
  reasonOf(() => verifyJwt(k, token, { ...options, ...opts }));

describe('signJwt / verifyJwt round trip', () => {
  it('returns exactly the signed claims, frozen', () => {
    const token = signJwt(key, claims);
    const verified = verifyJwt(key, token, options);
    expect(verified).toEqual(claims);
    expect(Object.isFrozen(verified)).toBe(true);
  });

  it('writes the header exactly as {"alg":"HS256","typ":"JWT"}, three segments', () => {
    const token = signJwt(key, claims);
    const segments = token.split('.');
    expect(segments).toHaveLength(3);
    expect(Buffer.from(segments[0]!, 'base64url').toString()).toBe('{"alg":"HS256","typ":"JWT"}');
  });

  it('round-trips nbf, and ignores (does not return) unknown claims', () => {
    const withNbf = { ...claims, nbf: NOW_S - 10 };
    expect(verifyJwt(key, signJwt(key, withNbf), options)).toEqual(withNbf);
    const extra = verifyJwt(key, forge(HEADER, { ...claims, role: 'admin' }), options);
    expect(extra).toEqual(claims);
  });

  it('signJwt serialises only the known claims, so run-time extras are not smuggled in', () => {
    const token = signJwt(key, { ...claims, admin: true } as JwtClaims);
    expect(Buffer.from(token.split('.')[1]!, 'base64url').toString()).not.toContain('admin');
  });

  it('signJwt refuses claims verifyJwt would reject for their type, and short keys', () => {
    expect(() => signJwt(key, { ...claims, exp: 1.5 })).toThrow(TypeError);
    expect(() => signJwt(key, { ...claims, sub: '' })).toThrow(TypeError);
    expect(() => signJwt(key, { ...claims, exp: claims.iat })).toThrow(TypeError);
    expect(() => signJwt(Buffer.alloc(16, 1), claims)).toThrow(RangeError);
  });

  it('a key shorter than 32 bytes is a configuration error (RangeError), not a 401', () => {
    const token = signJwt(key, claims);
    expect(() => verifyJwt(Buffer.alloc(31, 1), token, options)).toThrow(RangeError);
  });

  it('rejects nonsensical options', () => {
    const token = signJwt(key, claims);
    expect(() => verifyJwt(key, token, { ...options, issuer: '' })).toThrow(RangeError);
    expect(() => verifyJwt(key, token, { ...options, maxLifetimeSeconds: 0 })).toThrow(RangeError);
    expect(() => verifyJwt(key, token, { ...options, clockSkewSeconds: -1 })).toThrow(RangeError);
    expect(() => verifyJwt(key, token, { ...options, now: Number.NaN })).toThrow(RangeError);
  });
});

describe('RFC 7515 Appendix A.1 (HS256 interop)', () => {
  const rfcKey = Buffer.from('AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow', 'base64url');
  const rfcToken =
    'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9' +
    '.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ' +
    '.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';

  it('the signature layer verifies the RFC token with the RFC key', () => {
    const { header, payload } = verifyHs256Jws(rfcKey, rfcToken);
    expect(header).toEqual({ typ: 'JWT', alg: 'HS256' });
    expect(payload).toEqual({ iss: 'joe', exp: 1300819380, 'http://example.com/is_root': true });
  });

  it('verifyJwt gets past the MAC and fails on claims (the RFC claims are not ours)', () => {
    expect(reasonOf(() => verifyJwt(rfcKey, rfcToken, options))).toBe('claims');
  });

  it('the RFC token fails the MAC under another key', () => {
    expect(reasonOf(() => verifyHs256Jws(key, rfcToken))).toBe('signature');
  });
});

describe('algorithm allow-list', () => {
  it('rejects alg "none" with an empty signature, and "None"', () => {
    const h = b64(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const p = b64(JSON.stringify(claims));
    expect(verifyReason(`${h}.${p}.`)).toBe('algorithm');
    expect(verifyReason(forge({ alg: 'None', typ: 'JWT' }, claims))).toBe('algorithm');
  });

  it('rejects HS/RS confusion: alg RS256 but HMAC-signed with the key', () => {
    expect(verifyReason(forge({ alg: 'RS256', typ: 'JWT' }, claims))).toBe('algorithm');
  });

  it('rejects HS512, ES256, "hs256", a missing or non-string alg', () => {
    for (const alg of ['HS512', 'ES256', 'hs256', 'HS256 ', undefined, 256, null, ['HS256']]) {
      expect(verifyReason(forge({ alg, typ: 'JWT' }, claims)), String(alg)).toBe('algorithm');
    }
    expect(verifyReason(forge({ typ: 'JWT' }, claims))).toBe('algorithm');
  });

  it('rejects crit, key references (jku, jwk, x5u, x5c) and a typ other than JWT', () => {
    for (const extra of [{ crit: ['exp'] }, { jku: 'https://evil.example/jwks' }, { jwk: { kty: 'oct', k: 'AA' } }, { x5u: 'https://evil.example' }, { x5c: ['MII'] }, { b64: false }]) {
      expect(verifyReason(forge({ ...HEADER, ...extra }, claims)), JSON.stringify(extra)).toBe('algorithm');
    }
    expect(verifyReason(forge({ alg: 'HS256', typ: 'jwt+other' }, claims))).toBe('algorithm');
  });

  it('accepts a header without typ, or with kid (ignored)', () => {
    expect(verifyReason(forge({ alg: 'HS256' }, claims))).toBe('accepted');
    expect(verifyReason(forge({ ...HEADER, kid: 'k1' }, claims))).toBe('accepted');
  });
});

describe('signature', () => {
  it('rejects a token signed with another key', () => {
    expect(verifyReason(signJwt(randomKey(), claims))).toBe('signature');
  });

  it('rejects a flipped signature bit', () => {
    const [h, p, s] = signJwt(key, claims).split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[5]! ^= 0x01;
    expect(verifyReason(`${h}.${p}.${b64(sig)}`)).toBe('signature');
  });

  it('rejects a truncated, extended or empty signature', () => {
    const [h, p, s] = signJwt(key, claims).split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    expect(verifyReason(`${h}.${p}.${b64(sig.subarray(0, 31))}`)).toBe('signature');
    expect(verifyReason(`${h}.${p}.${b64(Buffer.concat([sig, Buffer.of(0)]))}`)).toBe('signature');
    expect(verifyReason(`${h}.${p}.`)).toBe('signature');
  });

  it('checks the MAC before parsing the payload: a garbage payload with a bad MAC is "signature"', () => {
    const h = b64(JSON.stringify(HEADER));
    expect(verifyReason(`${h}.${b64('not json')}.${b64(Buffer.alloc(32))}`)).toBe('signature');
  });
});

describe('time checks', () => {
  it('rejects an expired token, and exp exactly at now - skew', () => {
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S - 600, exp: NOW_S - 31 }))).toBe('expired');
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S - 600, exp: NOW_S - 30 }))).toBe('expired');
  });

  it('accepts a token expired by less than the skew', () => {
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S - 600, exp: NOW_S - 29 }))).toBe('accepted');
  });

  it('rejects nbf or iat in the future beyond the skew', () => {
    expect(verifyReason(signJwt(key, { ...claims, nbf: NOW_S + 31 }))).toBe('not_yet_valid');
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S + 31, exp: NOW_S + 900 }))).toBe('not_yet_valid');
  });

  it('accepts nbf and iat in the future within the skew', () => {
    expect(verifyReason(signJwt(key, { ...claims, nbf: NOW_S + 30 }))).toBe('accepted');
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S + 30, exp: NOW_S + 900 }))).toBe('accepted');
  });

  it('compares against now in milliseconds, not truncated seconds', () => {
    const token = signJwt(key, { ...claims, iat: NOW_S - 60, exp: NOW_S + 10 });
    expect(verifyReason(token, { clockSkewSeconds: 0, now: NOW + 9_999 })).toBe('accepted');
    expect(verifyReason(token, { clockSkewSeconds: 0, now: NOW + 10_000 })).toBe('expired');
  });

  it('rejects a lifetime (exp - iat) above the maximum, accepts exactly the maximum', () => {
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S, exp: NOW_S + 3601 }))).toBe('lifetime');
    expect(verifyReason(signJwt(key, { ...claims, iat: NOW_S, exp: NOW_S + 3600 }))).toBe('accepted');
  });
});

describe('claims', () => {
  const { exp: _exp, ...withoutExp } = claims;
  void _exp;

  it('rejects a missing exp (and each other required claim)', () => {
    expect(verifyReason(forge(HEADER, withoutExp))).toBe('claims');
    for (const name of ['iss', 'aud', 'sub', 'iat', 'jti', 'tid'] as const) {
      const { [name]: _dropped, ...rest } = claims;
      void _dropped;
      expect(verifyReason(forge(HEADER, rest)), name).toBe('claims');
    }
  });

  it('rejects non-integer, negative, string or huge times', () => {
    for (const exp of [NOW_S + 100.5, '1767270000', -1, 2 ** 53, null, true]) {
      expect(verifyReason(forge(HEADER, { ...claims, exp })), String(exp)).toBe('claims');
    }
    expect(verifyReason(forge(HEADER, { ...claims, nbf: 1.5 }))).toBe('claims');
    expect(verifyReason(forge(HEADER, { ...claims, iat: `${claims.iat}` }))).toBe('claims');
  });

  it('rejects a non-string or empty sub, jti, tid', () => {
    expect(verifyReason(forge(HEADER, { ...claims, sub: 42 }))).toBe('claims');
    expect(verifyReason(forge(HEADER, { ...claims, sub: ['client-1'] }))).toBe('claims');
    expect(verifyReason(forge(HEADER, { ...claims, jti: '' }))).toBe('claims');
    expect(verifyReason(forge(HEADER, { ...claims, tid: { id: 1 } }))).toBe('claims');
  });

  it('rejects issuer or audience mismatch, and an audience array', () => {
    expect(verifyReason(signJwt(key, { ...claims, iss: 'https://other.example' }))).toBe('claims');
    expect(verifyReason(signJwt(key, { ...claims, aud: 'other-api' }))).toBe('claims');
    expect(verifyReason(forge(HEADER, { ...claims, aud: ['ks-api'] }))).toBe('claims');
  });

  it('rejects exp not after iat', () => {
    expect(verifyReason(forge(HEADER, { ...claims, exp: claims.iat }))).toBe('claims');
  });
});

describe('shape and encoding', () => {
  const token = signJwt(key, claims);
  const [h, p, s] = token.split('.') as [string, string, string];

  it('rejects two or four segments, and empty segments', () => {
    expect(verifyReason(`${h}.${p}`)).toBe('malformed');
    expect(verifyReason(`${token}.${s}`)).toBe('malformed');
    expect(verifyReason(`${token}.`)).toBe('malformed');
    expect(verifyReason('')).toBe('malformed');
    expect(verifyReason('..')).toBe('malformed');
  });

  it('rejects "=" padding, standard base64 characters and whitespace', () => {
    expect(verifyReason(`${h}=.${p}.${s}`)).toBe('malformed');
    expect(verifyReason(`${h}.${p}.${s}=`)).toBe('malformed');
    expect(verifyReason(`${h}.${p}.+${s.slice(1)}`)).toBe('malformed');
    expect(verifyReason(`${h}.${p}.${s.slice(0, -1)}/`)).toBe('malformed');
    expect(verifyReason(` ${token}`)).toBe('malformed');
    expect(verifyReason(`${h}.${p}.${s}\n`)).toBe('malformed');
  });

  it('rejects non-canonical base64url (unused trailing bits set) even though Node decodes it', () => {
    // 32-byte MAC = 43 characters; the last carries 2 unused bits. Setting one keeps the bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s.at(-1)!);
    const lax = s.slice(0, -1) + alphabet[last | 1]!;
    expect(lax).not.toBe(s);
    expect(Buffer.from(lax, 'base64url').equals(Buffer.from(s, 'base64url'))).toBe(true);
    expect(verifyReason(`${h}.${p}.${lax}`)).toBe('malformed');
  });

  it('rejects a huge token before decoding it', () => {
    const huge = forge(HEADER, { ...claims, pad: 'x'.repeat(JWT_MAX_LENGTH) });
    expect(huge.length).toBeGreaterThan(JWT_MAX_LENGTH);
    expect(verifyReason(huge)).toBe('malformed');
    expect(verifyReason('a'.repeat(10_000_000))).toBe('malformed');
  });

  it('rejects a header or payload that is not a JSON object or not UTF-8', () => {
    expect(verifyReason(forge('["HS256"]', claims))).toBe('malformed');
    expect(verifyReason(forge('{"alg":"HS256"', claims))).toBe('malformed');
    expect(verifyReason(forge(HEADER, 'null'))).toBe('malformed');
    expect(verifyReason(forge(HEADER, '[1]'))).toBe('malformed');
    expect(verifyReason(forge(HEADER, '"claims"'))).toBe('malformed');
    const h = b64(JSON.stringify(HEADER));
    const p = b64(Buffer.concat([Buffer.from('{"sub":"'), Buffer.of(0xc3, 0x28), Buffer.from('"}')]));
    expect(verifyReason(`${h}.${p}.${hs256(key, `${h}.${p}`)}`)).toBe('malformed');
  });

  it('rejects duplicate member names, in the header and in the payload, escaped or nested', () => {
    expect(verifyReason(forge('{"alg":"none","alg":"HS256"}', claims))).toBe('malformed');
    const body = JSON.stringify(claims).slice(0, -1);
    expect(verifyReason(forge(HEADER, `${body},"sub":"admin"}`))).toBe('malformed');
    expect(verifyReason(forge(HEADER, `${body},"\\u0073ub":"admin"}`))).toBe('malformed');
    expect(verifyReason(forge(HEADER, `${body},"x":{"a":1,"a":2}}`))).toBe('malformed');
    // Same name in different objects is fine.
    expect(verifyReason(forge(HEADER, `${body},"x":{"sub":1,"y":[{"sub":2},{"sub":3}]}}`))).toBe('accepted');
  });

  it('rejects __proto__ member names and pollutes nothing', () => {
    const body = JSON.stringify(claims).slice(0, -1);
    expect(verifyReason(forge(HEADER, `${body},"__proto__":{"polluted":true,"exp":99999999999}}`))).toBe('malformed');
    expect(verifyReason(forge(HEADER, `${body},"x":{"__proto__":{"polluted":true}}}`))).toBe('malformed');
    expect(verifyReason(forge('{"alg":"HS256","__proto__":{"alg":"none"}}', claims))).toBe('malformed');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('mutation property', () => {
  const token = signJwt(key, claims);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u00e9';

  it('any single-character substitution, deletion or insertion makes a valid token fail', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: token.length - 1 }),
        fc.constantFrom(...chars.split('')),
        fc.constantFrom('replace', 'delete', 'insert'),
        (at, char, op) => {
          const mutated =
            op === 'replace' ? token.slice(0, at) + char + token.slice(at + 1)
            : op === 'delete' ? token.slice(0, at) + token.slice(at + 1)
            : token.slice(0, at) + char + token.slice(at);
          fc.pre(mutated !== token);
          expect(() => verifyJwt(key, mutated, options)).toThrow(JwtError);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('any single-bit flip of any token byte makes it fail', () => {
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.nat({ max: 7 }), (at, bit) => {
        const bytes = Buffer.from(token, 'latin1');
        bytes[at]! ^= 1 << bit;
        expect(() => verifyJwt(key, bytes.toString('latin1'), options)).toThrow(JwtError);
      }),
      { numRuns: 3000 },
    );
  });
});
