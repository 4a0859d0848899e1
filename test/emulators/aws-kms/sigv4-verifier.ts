import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Server side of AWS Signature Version 4, as the KMS front end checks it: the Authorization header
 * names the access key id, the credential scope (date/region/service) and the signed headers; the
 * emulator recomputes the signature with the secret it knows for that key id. A wrong secret
 * produces a different signature (InvalidSignatureException), an unknown key id or a wrong session
 * token is UnrecognizedClientException, an expired session token ExpiredTokenException: the same
 * answers the real service gives, so the client library's real signer is what gets tested.
 */

export interface Principal {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials carry a session token, sent as x-amz-security-token. */
  readonly sessionToken?: string;
  /** The temporary credentials have expired. */
  expired?: boolean;
}

export type AuthFailure = {
  readonly type: 'UnrecognizedClientException' | 'InvalidSignatureException' | 'ExpiredTokenException' | 'MissingAuthenticationTokenException' | 'IncompleteSignatureException';
  readonly message: string;
};

/** How far x-amz-date may be from the server's clock (the real service allows 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;

const AUTH_PATTERN = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** The principal that signed the request, or the error the real service would answer with. */
export function verifySigV4(
  request: { method: string; path: string; headers: IncomingHttpHeaders; body: Buffer },
  expected: { region: string; service: string; principals: ReadonlyMap<string, Principal> },
): Principal | AuthFailure {
  const authorization = headerValue(request.headers, 'authorization');
  if (!authorization) return { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const m = AUTH_PATTERN.exec(authorization);
  if (!m) return { type: 'IncompleteSignatureException', message: 'Authorization header requires Credential, SignedHeaders and Signature.' };
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = m as unknown as [string, string, string, string, string, string, string];

  const principal = expected.principals.get(accessKeyId);
  if (!principal) return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (region !== expected.region || service !== expected.service) {
    return { type: 'InvalidSignatureException', message: `Credential should be scoped to a valid region and service, not '${region}/${service}'.` };
  }
  const amzDate = headerValue(request.headers, 'x-amz-date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (Number.isNaN(signedAt) || !amzDate.startsWith(scopeDate)) {
    return { type: 'IncompleteSignatureException', message: 'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.' };
  }
  if (Math.abs(Date.now() - signedAt) > MAX_SKEW_MS) return { type: 'InvalidSignatureException', message: 'Signature expired: the request time is too far from the server time.' };

  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) {
    return { type: 'IncompleteSignatureException', message: 'The host and x-amz-date headers must be signed.' };
  }
  const payloadHash = sha256Hex(request.body);
  const declaredHash = headerValue(request.headers, 'x-amz-content-sha256');
  if (declaredHash !== undefined && declaredHash !== payloadHash) {
    return { type: 'InvalidSignatureException', message: 'The provided x-amz-content-sha256 header does not match what was computed.' };
  }
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${(headerValue(request.headers, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [request.method, request.path, '', canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${principal.secretAccessKey}`, scopeDate), region), service), 'aws4_request');
  const computed = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest();
  if (!timingSafeEqual(computed, Buffer.from(signature, 'hex'))) {
    // Like several AWS front ends, the answer goes on to show the canonical request it expected:
    // signed header values included (x-amz-security-token too), which a client must not log.
    return {
      type: 'InvalidSignatureException',
      message: `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'${canonicalRequest}'\n\nThe String-to-Sign should have been\n'${stringToSign}'\n`,
    };
  }

  // The session token is checked after the signature, as it is part of the signed request.
  const token = headerValue(request.headers, 'x-amz-security-token');
  if (principal.sessionToken !== undefined || token !== undefined) {
    if (token !== principal.sessionToken || !signedHeaders.includes('x-amz-security-token')) {
      return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
    }
    if (principal.expired) return { type: 'ExpiredTokenException', message: 'The security token included in the request is expired' };
  }
  return principal;
}

export function isAuthFailure(value: Principal | AuthFailure): value is AuthFailure {
  return 'type' in value;
}
