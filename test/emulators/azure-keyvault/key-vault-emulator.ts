import { constants, createCipheriv, createDecipheriv, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingCall, Reply } from './https-listener.js';
import type { IdentityEmulator } from './identity-emulator.js';

/**
 * The Key Vault (or Managed HSM) data plane, as far as a wrap/unwrap client uses it, following the
 * REST API the official client speaks (api-version 7.x):
 *
 * - every request without a valid bearer token → 401 with
 *   `WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`
 *   (the client sends its first request unauthenticated to learn where to get a token);
 * - GET  /keys/{name}[/{version}] → key bundle `{key: JWK (public part only), attributes}`;
 * - POST /keys/{name}/{version}/wrapkey | unwrapkey `{alg, value: base64url}` → `{kid, value}`;
 * - GET  /deletedkeys/{name} → deleted key bundle `{recoveryId, deletedDate, scheduledPurgeDate, …}`;
 * - errors `{error: {code, message, innererror?: {code}}}`: 403 Forbidden (AccessDenied; KeyDisabled),
 *   404 KeyNotFound, 400 BadParameter, 429 Throttled (no Retry-After header, as the service answers).
 *
 * Attributes are per version, as in Key Vault. Expired and not-yet-valid keys still unwrap (Key
 * Vault's "date-time controlled operations"), but refuse wrap. A disabled key refuses unwrap; a
 * disabled RSA key still wraps (a public-key operation, as the service allows), an oct key does not.
 */

export const VAULT_RESOURCE = 'https://vault.azure.net';
export type EmulatedKeyType = 'RSA-HSM' | 'oct-HSM';
export type KeyPermission = 'get' | 'wrapKey' | 'unwrapKey';

interface KeyVersion {
  readonly version: string;
  readonly kty: EmulatedKeyType;
  readonly rsa?: { readonly privateKey: KeyObject; readonly publicKey: KeyObject; readonly n: string; readonly e: string };
  readonly aes?: Buffer;
  enabled: boolean;
  /** Seconds since the epoch, as Key Vault's IntDate. */
  nbf?: number;
  exp?: number;
  readonly created: number;
  updated: number;
}

interface StoredKey {
  readonly name: string;
  readonly versions: KeyVersion[];
  deleted?: { readonly deletedDate: number; readonly scheduledPurgeDate: number };
}

const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const RETENTION_DAYS = 90;
const now = (): number => Math.floor(Date.now() / 1000);

export class KeyVaultEmulator {
  private readonly keys = new Map<string, StoredKey>();
  /** Permissions taken away from the application (its role assignment changed). */
  readonly denied = new Set<KeyPermission>();
  throttled = false;
  /** wrapkey / unwrapkey / key reads answered (whatever the outcome). */
  operations = 0;
  /** "METHOD /path" of the authenticated requests, latest last (the tests check which URLs a client calls). */
  readonly calls: string[] = [];

  constructor(
    private readonly identity: IdentityEmulator,
    private readonly urls: { readonly vault: () => string; readonly authority: () => string },
  ) {}

  /** Whether a key of that name exists, active or deleted (not purged). */
  has(name: string): boolean {
    return this.keys.has(name);
  }

  createKey(name: string, kty: EmulatedKeyType): string {
    const key: StoredKey = { name, versions: [] };
    this.keys.set(name, key);
    return this.addVersion(key, kty);
  }

  /** A new version becomes the current one (what a rotation policy or `az keyvault key rotate` does). */
  rotateKey(name: string): string {
    const key = this.mustGet(name);
    return this.addVersion(key, key.versions[key.versions.length - 1]!.kty);
  }

  /** Enable or disable every version (what an administrator does to revoke a key). */
  setEnabled(name: string, enabled: boolean): void {
    for (const version of this.mustGet(name).versions) {
      version.enabled = enabled;
      version.updated = now();
    }
  }

  /** Set (or clear) the activation / expiry dates of the current version. */
  setDates(name: string, dates: { readonly notBefore?: Date | null; readonly expiresOn?: Date | null }): void {
    const key = this.mustGet(name);
    const current = key.versions[key.versions.length - 1]!;
    if (dates.notBefore !== undefined) current.nbf = dates.notBefore ? Math.floor(dates.notBefore.getTime() / 1000) : undefined;
    if (dates.expiresOn !== undefined) current.exp = dates.expiresOn ? Math.floor(dates.expiresOn.getTime() / 1000) : undefined;
    current.updated = now();
  }

  /** Soft delete: the key disappears from /keys and shows under /deletedkeys until recovered or purged. */
  deleteKey(name: string): void {
    const deletedDate = now();
    this.mustGet(name).deleted = { deletedDate, scheduledPurgeDate: deletedDate + RETENTION_DAYS * 86_400 };
  }

  recoverKey(name: string): void {
    delete this.mustGet(name).deleted;
  }

  /** Permanently delete: nothing it wrapped can be unwrapped again. */
  purgeKey(name: string): void {
    const key = this.mustGet(name);
    for (const version of key.versions) version.aes?.fill(0);
    this.keys.delete(name);
  }

  handle(call: IncomingCall): Reply {
    if (!call.url.searchParams.get('api-version')) return kvError(400, 'BadParameter', "The 'api-version' query parameter is missing.");
    const caller = this.authenticate(call);
    if ('status' in caller) return caller;
    this.calls.push(`${call.method} ${call.url.pathname}`);
    if (this.calls.length > 100) this.calls.shift();
    // Key Vault's 429 carries no Retry-After header (as captured from the service), just this body.
    if (this.throttled) return kvError(429, 'Throttled', 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached');
    // "/keys/k", "/keys/k/", "/keys/k/v", "/keys/k//wrapkey", "/keys/k/v/unwrapkey", "/deletedkeys/k"
    const [collection, name = '', version = '', operation, extra] = call.url.pathname.split('/').slice(1);
    if (extra !== undefined) return kvError(404, 'NotFound', 'The requested resource was not found.');
    if (collection === 'deletedkeys' && call.method === 'GET' && version === '') return this.getDeleted(caller.clientId, name);
    if (collection !== 'keys') return kvError(404, 'NotFound', 'The requested resource was not found.');
    if (call.method === 'GET' && operation === undefined) return this.getKey(caller.clientId, name, version);
    if (call.method === 'POST' && (operation === 'wrapkey' || operation === 'unwrapkey')) return this.crypt(caller.clientId, name, version, operation, call.body);
    return kvError(405, 'MethodNotAllowed', `The requested resource does not support http method '${call.method}'.`);
  }

  private authenticate(call: IncomingCall): { readonly clientId: string } | Reply {
    const challenge = (message: string): Reply => ({
      ...kvError(401, 'Unauthorized', message),
      headers: { 'www-authenticate': `Bearer authorization="${this.urls.authority()}/${this.identity.tenantId}", resource="${VAULT_RESOURCE}"` },
    });
    const header = call.headers.authorization;
    if (!header?.startsWith('Bearer ')) return challenge('AKV10000: Request is missing a Bearer or PoP token.');
    const token = this.identity.tokenInfo(header.slice('Bearer '.length));
    if (!token) return challenge('AKV10013: The access token is invalid or has expired.');
    if (token.audience !== VAULT_RESOURCE) return challenge(`AKV10022: Invalid audience. Expected ${VAULT_RESOURCE}, found: ${token.audience}.`);
    return { clientId: token.clientId };
  }

  private forbidden(clientId: string, permission: KeyPermission): Reply | undefined {
    if (!this.denied.has(permission)) return undefined;
    const vaultName = new URL(this.urls.vault()).host;
    return kvError(
      403,
      'Forbidden',
      `The user, group or application 'appid=${clientId};oid=00000000-0000-0000-0000-000000000001;iss=https://sts.windows.net/${this.identity.tenantId}/' does not have keys ${permission} permission on key vault '${vaultName};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
      'AccessDenied',
    );
  }

  private find(name: string, version: string): KeyVersion | Reply {
    const key = this.keys.get(name);
    const found = key && !key.deleted ? (version === '' ? key.versions[key.versions.length - 1] : key.versions.find((v) => v.version === version)) : undefined;
    if (!found) {
      return kvError(404, 'KeyNotFound', `A key with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);
    }
    return found;
  }

  private getKey(clientId: string, name: string, version: string): Reply {
    this.operations += 1;
    const denied = this.forbidden(clientId, 'get');
    if (denied) return denied;
    const found = this.find(name, version);
    if ('status' in found) return found;
    return { status: 200, json: this.bundle(name, found) };
  }

  private getDeleted(clientId: string, name: string): Reply {
    this.operations += 1;
    const denied = this.forbidden(clientId, 'get');
    if (denied) return denied;
    const key = this.keys.get(name);
    if (!key?.deleted) return kvError(404, 'KeyNotFound', `Deleted Key not found: ${name}`);
    return {
      status: 200,
      json: {
        ...this.bundle(name, key.versions[key.versions.length - 1]!),
        recoveryId: `${this.urls.vault()}/deletedkeys/${name}`,
        deletedDate: key.deleted.deletedDate,
        scheduledPurgeDate: key.deleted.scheduledPurgeDate,
      },
    };
  }

  private crypt(clientId: string, name: string, version: string, operation: 'wrapkey' | 'unwrapkey', body: string): Reply {
    this.operations += 1;
    const wrap = operation === 'wrapkey';
    const opName = wrap ? 'wrapKey' : 'unwrapKey';
    const denied = this.forbidden(clientId, opName);
    if (denied) return denied;
    const found = this.find(name, version);
    if ('status' in found) return found;
    if (!found.enabled && (!wrap || found.kty === 'oct-HSM')) return kvError(403, 'Forbidden', `Operation ${opName} is not allowed on a disabled key.`, 'KeyDisabled');
    if (wrap && found.exp !== undefined && now() >= found.exp) return kvError(403, 'Forbidden', `Operation ${opName} is not allowed on an expired key.`);
    if (wrap && found.nbf !== undefined && now() < found.nbf) return kvError(403, 'Forbidden', `Operation ${opName} is not allowed on a key that is not yet valid.`);
    let request: { alg?: unknown; value?: unknown };
    try {
      request = JSON.parse(body) as { alg?: unknown; value?: unknown };
    } catch {
      return kvError(400, 'BadParameter', 'The request body is not valid JSON.');
    }
    if (typeof request.value !== 'string' || typeof request.alg !== 'string') return kvError(400, 'BadParameter', "The parameters 'alg' and 'value' are required.");
    const input = Buffer.from(request.value, 'base64url');
    try {
      const output = this.transform(found, request.alg, wrap, input);
      if (!output) return kvError(400, 'BadParameter', `Algorithm ${request.alg} is not supported for key type ${found.kty}.`);
      return { status: 200, json: { kid: this.kid(name, found), value: output.toString('base64url') } };
    } catch {
      return kvError(400, 'BadParameter', 'The parameter is incorrect.');
    } finally {
      input.fill(0);
    }
  }

  private transform(key: KeyVersion, alg: string, wrap: boolean, input: Buffer): Buffer | undefined {
    if (key.rsa && (alg === 'RSA-OAEP-256' || alg === 'RSA-OAEP')) {
      const options = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' };
      return wrap ? publicEncrypt({ key: key.rsa.publicKey, ...options }, input) : privateDecrypt({ key: key.rsa.privateKey, ...options }, input);
    }
    if (key.aes && alg === 'A256KW') {
      const cipher = wrap ? createCipheriv('id-aes256-wrap', key.aes, AES_KW_IV) : createDecipheriv('id-aes256-wrap', key.aes, AES_KW_IV);
      return Buffer.concat([cipher.update(input), cipher.final()]);
    }
    return undefined;
  }

  private kid(name: string, version: KeyVersion): string {
    return `${this.urls.vault()}/keys/${name}/${version.version}`;
  }

  private bundle(name: string, version: KeyVersion): Record<string, unknown> {
    const jwk: Record<string, unknown> = { kid: this.kid(name, version), kty: version.kty, key_ops: ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'] };
    // Only the public part of an RSA key; never `k` of an oct key (it is not exportable).
    if (version.rsa) Object.assign(jwk, { n: version.rsa.n, e: version.rsa.e });
    const attributes: Record<string, unknown> = {
      enabled: version.enabled,
      created: version.created,
      updated: version.updated,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: RETENTION_DAYS,
      exportable: false,
    };
    if (version.nbf !== undefined) attributes.nbf = version.nbf;
    if (version.exp !== undefined) attributes.exp = version.exp;
    return { key: jwk, attributes };
  }

  private addVersion(key: StoredKey, kty: EmulatedKeyType): string {
    const version = randomBytes(16).toString('hex');
    const created = now();
    if (kty === 'RSA-HSM') {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const jwk = publicKey.export({ format: 'jwk' });
      key.versions.push({ version, kty, rsa: { privateKey, publicKey, n: jwk.n!, e: jwk.e! }, enabled: true, created, updated: created });
    } else {
      key.versions.push({ version, kty, aes: randomBytes(32), enabled: true, created, updated: created });
    }
    return version;
  }

  private mustGet(name: string): StoredKey {
    const key = this.keys.get(name);
    if (!key) throw new Error(`emulator: no key ${name}`);
    return key;
  }
}

function kvError(status: number, code: string, message: string, inner?: string): Reply {
  return { status, json: { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } } };
}
