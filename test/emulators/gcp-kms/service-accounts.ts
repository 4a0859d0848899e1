import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';

/**
 * Service accounts of the Cloud KMS emulator, and the check Google front ends make on a request
 * from one. With a service-account key, the official client does not exchange anything at a token
 * endpoint: google-auth-library signs a "self-signed JWT" (RS256, header `kid` = the key's
 * private_key_id, iss = sub = client_email, `aud` = "https://cloudkms.googleapis.com/" or a `scope`
 * claim, one hour of validity) and sends it as the bearer token. Google checks it against the
 * account's registered public keys; a deleted key or a wrong signature is 401 UNAUTHENTICATED.
 */

/** The JSON key file a customer downloads for a service account (the fields Google writes). */
export interface ServiceAccountKeyFile {
  readonly type: 'service_account';
  readonly project_id: string;
  readonly private_key_id: string;
  readonly private_key: string;
  readonly client_email: string;
  readonly client_id: string;
  readonly auth_uri: string;
  readonly token_uri: string;
  readonly auth_provider_x509_cert_url: string;
  readonly client_x509_cert_url: string;
  readonly universe_domain: string;
}

export const KMS_AUDIENCE = 'https://cloudkms.googleapis.com/';
const ACCEPTED_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/cloudkms'];
const CLOCK_SKEW_SECONDS = 300;

/** A fresh RSA key for `email`, as Google would issue it: the key file, and the public half it keeps. */
export function newServiceAccountKey(email: string, projectId: string): { file: ServiceAccountKeyFile; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyId = randomBytes(20).toString('hex');
  const file: ServiceAccountKeyFile = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: keyId,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: email,
    client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  };
  return { file, publicKey };
}

/** Registered public keys by account email, then by key id. */
export type AccountKeys = ReadonlyMap<string, ReadonlyMap<string, KeyObject>>;

function decodeJson(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The account email a bearer token authenticates, or null if it is not a valid self-signed JWT of a
 * registered key (unknown account or key id, bad signature, expired, wrong audience/scope).
 */
export function authenticate(authorization: string | undefined, accounts: AccountKeys, now = Date.now()): string | null {
  const match = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!match) return null;
  const [, headerPart, payloadPart, signaturePart] = match as unknown as [string, string, string, string];
  const header = decodeJson(headerPart);
  const claims = decodeJson(payloadPart);
  if (!header || !claims || header.alg !== 'RS256' || typeof header.kid !== 'string') return null;
  const { iss, sub, aud, scope, iat, exp } = claims;
  if (typeof iss !== 'string' || sub !== iss || typeof iat !== 'number' || typeof exp !== 'number') return null;
  const publicKey = accounts.get(iss)?.get(header.kid);
  if (!publicKey) return null;
  const signed = verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), publicKey, Buffer.from(signaturePart, 'base64url'));
  if (!signed) return null;
  const seconds = now / 1000;
  if (exp < seconds - CLOCK_SKEW_SECONDS || iat > seconds + CLOCK_SKEW_SECONDS || exp - iat > 3600) return null;
  const scopes = typeof scope === 'string' ? scope.split(' ') : [];
  if (aud !== KMS_AUDIENCE && !scopes.some((s) => ACCEPTED_SCOPES.includes(s))) return null;
  return iss;
}
