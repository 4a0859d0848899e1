import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { Socket } from 'node:net';
import { KmsError, KmsKeys, type VersionState } from './kms-keys.js';
import { authenticate, newServiceAccountKey, type ServiceAccountKeyFile } from './service-accounts.js';

/**
 * A local emulator of the Cloud KMS REST API (v1), for the tests of the gcp-kms provider. TEST CODE:
 * it follows the published wire protocol the official Node client (@google-cloud/kms, REST
 * fallback) speaks — https://cloud.google.com/kms/docs/reference/rest:
 *
 *   POST /v1/{cryptoKey}:encrypt  {plaintext, additionalAuthenticatedData, *Crc32c}  → EncryptResponse
 *   POST /v1/{cryptoKey}:decrypt  {ciphertext, additionalAuthenticatedData, *Crc32c} → DecryptResponse
 *   GET  /v1/{cryptoKey}                                                            → CryptoKey
 *
 * bytes as base64, int64 wrappers as strings, enums as numbers when the client asks
 * `$alt=json;enum-encoding=int`; errors as Google JSON errors {error:{code, message, status, details}}
 * with their HTTP status; callers authenticated by a self-signed service-account JWT
 * (service-accounts.ts) and authorised per permission (cloudkms.cryptoKeyVersions.useToEncrypt /
 * useToDecrypt, cloudkms.cryptoKeys.get).
 *
 * Controls put it into every state the provider must report; `serviceCalls` counts the requests it
 * received.
 */

export const PERMISSIONS = ['cloudkms.cryptoKeyVersions.useToEncrypt', 'cloudkms.cryptoKeyVersions.useToDecrypt', 'cloudkms.cryptoKeys.get'] as const;

/** CRC32C computed bit by bit — deliberately not the provider's table code, so one checks the other. */
function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

interface Account {
  readonly keys: Map<string, KeyObject>;
  readonly permissions: Set<string>;
}

type Body = Record<string, unknown>;

function bytes(body: Body, field: string): Buffer {
  const value = body[field];
  if (value === undefined) return Buffer.alloc(0);
  if (typeof value !== 'string') throw new KmsError(400, 'INVALID_ARGUMENT', `Invalid value at '${field}'`);
  return Buffer.from(value, 'base64');
}

/** Checks an optional `…Crc32c` field against its data: true if present and matching. */
function checksum(body: Body, field: string, snake: string, data: Buffer): boolean {
  const value = body[`${field}Crc32c`];
  if (value === undefined) return false;
  if (Number(value) !== crc32c(data)) throw new KmsError(400, 'INVALID_ARGUMENT', `The checksum in field ${snake}_crc32c did not match the data in field ${snake}.`);
  return true;
}

export class GcpKmsEmulator {
  readonly keys = new KmsKeys();
  private readonly accounts = new Map<string, Account>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;
  private calls = 0;
  private abandonedCalls = 0;
  private throttled = false;
  private delayMs = 0;
  private corrupt = false;

  private constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<GcpKmsEmulator> {
    const emulator = new GcpKmsEmulator();
    await emulator.listen(0);
    return emulator;
  }

  /** `apiEndpoint` for the provider config (the http form only the test factory accepts). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get serviceCalls(): number {
    return this.calls;
  }

  /** Requests whose client closed the connection before the answer (an abandoned call). */
  get abandoned(): number {
    return this.abandonedCalls;
  }

  /** A service account with all three permissions, and a key file for it. */
  addServiceAccount(email: string, projectId: string): ServiceAccountKeyFile {
    const { file, publicKey } = newServiceAccountKey(email, projectId);
    const account = this.accounts.get(email) ?? { keys: new Map(), permissions: new Set(PERMISSIONS) };
    account.keys.set(file.private_key_id, publicKey);
    this.accounts.set(email, account);
    return file;
  }

  /** Take `permissions` away from every account (IAM policy change), or give them back. */
  setPermissions(permissions: readonly string[], granted: boolean): void {
    for (const account of this.accounts.values()) for (const p of permissions) (granted ? account.permissions.add(p) : account.permissions.delete(p));
  }

  throttle(on: boolean): void {
    this.throttled = on;
  }

  slow(ms: number): void {
    this.delayMs = ms;
  }

  /** Flip a byte of every encrypt response's ciphertext, keeping the checksum of the original. */
  corruptCiphertexts(on: boolean): void {
    this.corrupt = on;
  }

  /** Close the listener and cut open connections (refused), or listen again on the same port. */
  async unreachable(on: boolean): Promise<void> {
    if (on) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    } else if (!this.server.listening) {
      await this.listen(this.port);
    }
  }

  reset(): void {
    this.throttled = false;
    this.delayMs = 0;
    this.corrupt = false;
    this.setPermissions(PERMISSIONS, true);
  }

  async stop(): Promise<void> {
    await this.unreachable(true);
  }

  /** Move every version of a key between states (disable, enable, schedule/cancel destruction, destroy). */
  transition(name: string, from: readonly VersionState[], to: VersionState): void {
    this.keys.transition(name, from, to);
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address && typeof address === 'object') this.port = address.port;
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('close', () => {
      if (!res.writableFinished) this.abandonedCalls++;
    });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://emulator');
    const enumsAsInt = url.searchParams.get('$alt')?.includes('enum-encoding=int') ?? false;
    const route = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/:]+)(?::(encrypt|decrypt))?$/.exec(decodeURIComponent(url.pathname));
    const operation = route ? (route[2] ?? (req.method === 'GET' ? 'get' : null)) : null;
    try {
      if (!route || !operation || (operation === 'get') !== (req.method === 'GET')) throw new KmsError(404, 'NOT_FOUND', 'The requested URL was not found on this server.');
      this.calls++;
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      const caller = authenticate(req.headers.authorization, new Map([...this.accounts].map(([email, a]) => [email, a.keys])));
      if (!caller) {
        res.setHeader('www-authenticate', 'Bearer realm="https://accounts.google.com/", error="invalid_token"');
        throw new KmsError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.');
      }
      if (this.throttled) {
        throw new KmsError(429, 'RESOURCE_EXHAUSTED', "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute' of service 'cloudkms.googleapis.com'.", [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com' }]);
      }
      const name = route[1]!;
      const permission = { encrypt: PERMISSIONS[0], decrypt: PERMISSIONS[1], get: PERMISSIONS[2] }[operation as 'encrypt' | 'decrypt' | 'get'];
      if (!this.accounts.get(caller)?.permissions.has(permission)) {
        throw new KmsError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource '${name}' (or it may not exist).`, [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission, resource: name } }]);
      }
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body) : {};
      this.reply(res, 200, this.serve(operation as 'encrypt' | 'decrypt' | 'get', name, body, enumsAsInt));
    } catch (error) {
      const e = error instanceof KmsError ? error : new KmsError(500, 'INTERNAL', 'Internal error encountered.');
      this.reply(res, e.http, { error: { code: e.http, message: e.message, status: e.status, ...(e.details.length > 0 && { details: e.details }) } });
    }
  }

  private serve(operation: 'encrypt' | 'decrypt' | 'get', name: string, body: Body, enumsAsInt: boolean): Body {
    const software = enumsAsInt ? 1 : 'SOFTWARE';
    if (operation === 'get') return this.keys.resource(name, enumsAsInt);
    const aad = bytes(body, 'additionalAuthenticatedData');
    const aadVerified = checksum(body, 'additionalAuthenticatedData', 'additional_authenticated_data', aad);
    if (operation === 'encrypt') {
      const plaintext = bytes(body, 'plaintext');
      const plaintextVerified = checksum(body, 'plaintext', 'plaintext', plaintext);
      const { version, ciphertext } = this.keys.encrypt(name, plaintext, aad);
      const sum = crc32c(ciphertext);
      if (this.corrupt) ciphertext[ciphertext.length - 1]! ^= 0x01;
      return { name: version, ciphertext: ciphertext.toString('base64'), ciphertextCrc32c: String(sum), verifiedPlaintextCrc32c: plaintextVerified, verifiedAdditionalAuthenticatedDataCrc32c: aadVerified, protectionLevel: software };
    }
    const ciphertext = bytes(body, 'ciphertext');
    checksum(body, 'ciphertext', 'ciphertext', ciphertext);
    const { plaintext, usedPrimary } = this.keys.decrypt(name, ciphertext, aad);
    return { plaintext: plaintext.toString('base64'), plaintextCrc32c: String(crc32c(plaintext)), usedPrimary, protectionLevel: software };
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  }
}
