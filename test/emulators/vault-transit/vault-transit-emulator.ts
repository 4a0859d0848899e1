import { once } from 'node:events';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { KEY_TYPES, TransitKey, TransitUserError, strictBase64 } from './transit-keys.js';
import { VaultAcl, type Capability } from './vault-acl.js';

/**
 * A local emulator of HashiCorp Vault's HTTP API for the transit secrets engine (test code only),
 * following Vault's wire protocol: `X-Vault-Token` (and `X-Vault-Namespace`), JSON bodies, answers
 * wrapped as `{request_id, data, warnings, …}`, errors as `{"errors":[…]}` with Vault's statuses
 * and texts (400 user errors, 403 permission denied / invalid token, 404 no route or no key, 429
 * rate limit quota, 503 sealed). Encrypt on a missing key is a *create* (Vault's existence check):
 * a token with only `update` gets 403, a root token upserts the key.
 *
 * Routes: auth/token/lookup-self; <mount>/encrypt|decrypt/:name; <mount>/keys/:name (GET, POST
 * create, DELETE); <mount>/keys/:name/rotate|config|trim.
 *
 * Failure injection: throttle (429), slow (delay every answer), seal (503), unreachable (the
 * listener is closed and open connections dropped; reopened on the same port). `calls` counts the
 * requests made with any token but the root token (the provider's calls, not the fixture's).
 */

export interface VaultTransitEmulatorOptions {
  /** Path of the transit mount (default "transit"). */
  readonly mount?: string;
  /** Serve the mount only in this Enterprise namespace (requests must send X-Vault-Namespace). */
  readonly namespace?: string;
  /** Serve HTTPS with this PEM key and certificate. */
  readonly tls?: { readonly key: string; readonly cert: string };
  /** Answer a bad token as Vault before 1.17 did: only "permission denied", no "invalid token". */
  readonly legacyTokenErrors?: boolean;
}

interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

const errors = (status: number, ...messages: string[]): Answer => ({ status, body: { errors: messages } });
const multi = (...messages: string[]): string => `${messages.length} error${messages.length === 1 ? '' : 's'} occurred:\n${messages.map((m) => `\t* ${m}\n`).join('')}\n`;
const ok = (data: unknown, warnings: string[] | null = null): Answer => ({
  status: 200,
  body: { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings, auth: null, mount_type: 'transit' },
});
const NO_CONTENT: Answer = { status: 204 };

export class VaultTransitEmulator {
  readonly acl = new VaultAcl();
  /** Requests served for tokens other than the root token. */
  calls = 0;
  private readonly keys = new Map<string, TransitKey>();
  private readonly mount: string;
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private port = 0;
  private throttled = false;
  private delayMs = 0;
  private sealed = false;
  private down = false;

  private constructor(private readonly options: VaultTransitEmulatorOptions) {
    this.mount = options.mount ?? 'transit';
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res);
    this.server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler) : createHttpServer(handler);
  }

  static async start(options: VaultTransitEmulatorOptions = {}): Promise<VaultTransitEmulator> {
    const emulator = new VaultTransitEmulator(options);
    emulator.server.listen(0, '127.0.0.1');
    await once(emulator.server, 'listening');
    emulator.port = (emulator.server.address() as AddressInfo).port;
    return emulator;
  }

  /** VAULT_ADDR of the emulator. */
  get address(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  get rootToken(): string {
    return this.acl.rootToken;
  }

  throttle(on: boolean): void {
    this.throttled = on;
  }

  slow(ms: number): void {
    this.delayMs = ms;
  }

  seal(on: boolean): void {
    this.sealed = on;
  }

  /** Close the listener and drop every connection (refused from now on), or listen again on the same port. */
  async unreachable(on: boolean): Promise<void> {
    if (on === this.down) return;
    this.down = on;
    if (on) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await closed;
    } else {
      this.server.listen(this.port, '127.0.0.1');
      await once(this.server, 'listening');
    }
  }

  /** Call the emulator's API as an operator would with the vault CLI (root token unless given). */
  async admin(method: string, path: string, body?: unknown, token = this.rootToken): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const send = this.options.tls ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { 'X-Vault-Token': token };
    if (this.options.namespace) headers['X-Vault-Namespace'] = this.options.namespace;
    return new Promise((resolve, reject) => {
      const req = send(`${this.address}/v1/${path}`, { method, headers, ...(this.options.tls ? { ca: this.options.tls.cert } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (!this.down) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await closed;
    }
    for (const key of this.keys.values()) key.destroy();
    this.keys.clear();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let answer: Answer;
    try {
      const body = await readBody(req);
      if (this.delayMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            resolve();
          }, this.delayMs);
          this.timers.add(timer);
        });
      }
      answer = this.route(req, body);
    } catch (error) {
      answer = error instanceof TransitUserError ? errors(400, error.message) : errors(500, multi('internal error'));
    }
    if (res.destroyed) return;
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    res.writeHead(answer.status, { 'Cache-Control': 'no-store', ...(text ? { 'Content-Type': 'application/json' } : {}), ...answer.headers });
    res.end(text);
  }

  private route(req: IncomingMessage, rawBody: string): Answer {
    const url = new URL(req.url ?? '/', 'http://vault');
    if (!url.pathname.startsWith('/v1/')) return errors(404);
    const path = url.pathname.slice('/v1/'.length).split('/').map(decodeURIComponent).join('/');
    // Vault's order: seal status, then rate limit quotas, then the token and its policies.
    if (this.sealed) return errors(503, 'Vault is sealed');
    if (this.throttled) return { ...errors(429, `request path "${path}": rate limit quota exceeded`), headers: { 'Retry-After': '1' } };
    const method = req.method === 'PUT' ? 'POST' : (req.method ?? 'GET');
    const body = parseJson(rawBody);
    const tokenHeader = req.headers['x-vault-token'];
    const token = typeof tokenHeader === 'string' ? tokenHeader : undefined;
    if (token !== this.rootToken) this.calls += 1;
    const entry = this.acl.token(token);
    if (!entry) return errors(403, this.options.legacyTokenErrors ? 'permission denied' : multi('permission denied', 'invalid token'));

    const transit = this.parseTransit(path, req.headers['x-vault-namespace']);
    const capability = this.capability(method, path, transit);
    if (capability === undefined) return errors(405, multi('unsupported operation'));
    if (!this.acl.allows(entry, path, capability)) return errors(403, multi('permission denied'));

    if (path === 'auth/token/lookup-self' && method === 'GET') return ok(this.acl.lookup(token!, entry));
    if (!transit) return errors(404, `no handler for route "${path}". route entry not found.`);
    const { operation, name, action } = transit;
    const key = this.keys.get(name);
    if (operation === 'encrypt') return this.encrypt(name, key, body, capability === 'create');
    if (operation === 'decrypt') return this.decrypt(key, body);
    if (action === undefined) {
      if (method === 'GET') return key ? ok(key.read()) : errors(404);
      if (method === 'DELETE') return this.deleteKey(name, key);
      return this.createKey(name, key, body);
    }
    if (!key) return errors(400, 'encryption key not found');
    if (action === 'rotate') {
      key.rotate();
      return ok(key.read());
    }
    if (action === 'config') {
      key.configure(body);
      return ok(key.read());
    }
    key.trim(typeof body.min_available_version === 'number' ? body.min_available_version : 0);
    return ok(key.read());
  }

  /** The transit route of `path`, or undefined when nothing is mounted there (wrong mount or namespace). */
  private parseTransit(path: string, namespaceHeader: string | string[] | undefined) {
    const namespace = typeof namespaceHeader === 'string' ? namespaceHeader.replace(/^\/+|\/+$/g, '') : '';
    if (namespace !== (this.options.namespace ?? '')) return undefined;
    if (!path.startsWith(`${this.mount}/`)) return undefined;
    const match = /^(encrypt|decrypt|keys)\/([^/]+)(?:\/(rotate|config|trim))?$/.exec(path.slice(this.mount.length + 1));
    if (!match || (match[3] !== undefined && match[1] !== 'keys')) return undefined;
    return { operation: match[1] as 'encrypt' | 'decrypt' | 'keys', name: match[2]!, action: match[3] as 'rotate' | 'config' | 'trim' | undefined };
  }

  /** The capability a request needs. Writes to paths with an existence check are `create` when the key is missing. */
  private capability(method: string, path: string, transit: ReturnType<VaultTransitEmulator['parseTransit']>): Capability | undefined {
    if (method === 'GET') return 'read';
    if (method === 'DELETE') return 'delete';
    if (method !== 'POST') return undefined;
    if (transit && (transit.operation === 'encrypt' || (transit.operation === 'keys' && transit.action === undefined)) && !this.keys.has(transit.name)) return 'create';
    return path === 'auth/token/lookup-self' ? 'read' : 'update';
  }

  private encrypt(name: string, existing: TransitKey | undefined, body: Record<string, unknown>, create: boolean): Answer {
    if (typeof body.plaintext !== 'string') return errors(400, 'missing plaintext to encrypt');
    const plaintext = strictBase64(body.plaintext, 'illegal base64 data at input byte 0');
    const associated = typeof body.associated_data === 'string' && body.associated_data !== '' ? strictBase64(body.associated_data, 'unable to decode associated_data') : undefined;
    let key = existing;
    if (!key) {
      // Upsert: only reachable with the create capability.
      if (!create) return errors(400, 'encryption key not found');
      key = new TransitKey(name, typeof body.type === 'string' ? body.type : 'aes256-gcm96');
      this.keys.set(name, key);
    }
    const { ciphertext, version } = key.encrypt(plaintext, associated, typeof body.key_version === 'number' ? body.key_version : 0);
    return ok({ ciphertext, key_version: version });
  }

  private decrypt(key: TransitKey | undefined, body: Record<string, unknown>): Answer {
    if (typeof body.ciphertext !== 'string' || body.ciphertext === '') return errors(400, 'missing ciphertext to decrypt');
    if (!key) return errors(400, 'encryption key not found');
    const associated = typeof body.associated_data === 'string' && body.associated_data !== '' ? strictBase64(body.associated_data, 'unable to decode associated_data') : undefined;
    return ok({ plaintext: key.decrypt(body.ciphertext, associated).toString('base64') });
  }

  private createKey(name: string, existing: TransitKey | undefined, body: Record<string, unknown>): Answer {
    const type = typeof body.type === 'string' ? body.type : 'aes256-gcm96';
    if (!KEY_TYPES.has(type)) return errors(400, `unknown key type: ${type}`);
    if (existing) return ok(existing.read());
    const key = new TransitKey(name, type, body.derived === true);
    this.keys.set(name, key);
    return ok(key.read());
  }

  private deleteKey(name: string, key: TransitKey | undefined): Answer {
    if (!key) return NO_CONTENT;
    if (!key.deletionAllowed) return errors(400, 'deletion is not allowed for this key');
    key.destroy();
    this.keys.delete(name);
    return NO_CONTENT;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): Record<string, unknown> {
  if (text === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    throw new TransitUserError('failed to parse JSON input');
  }
}
