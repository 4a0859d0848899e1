import { base64ToBytes, bytesToBase64, toBytes } from './encoding.js';
import { KeystrataApiError } from './errors.js';
import { route, Transport, type FetchLike } from './transport.js';
import type {
  ApiClient,
  AuditEntry,
  AuditVerifyResponse,
  CmkInfo,
  PutCmkRequest,
  CreateClientRequest,
  CreateClientResponse,
  CreateObjectRequest,
  DecryptRequest,
  DecryptResult,
  EncryptRequest,
  EncryptResult,
  Environment,
  Health,
  JwtRequest,
  JwtResponse,
  KeyStatus,
  ObjectVersionList,
  Page,
  PageOptions,
  RotateTokenRequest,
  RotateTokenResponse,
  Scope,
  UpdateClientRequest,
  UpdateObjectRequest,
  VaultObject,
  VaultObjectWithValue,
  Workspace,
  WorkspaceSummary,
} from './types.js';

/** Options of {@link KeystrataClient}. */
export interface KeystrataClientOptions {
  /** Where the server listens, e.g. `http://127.0.0.1:8200` (a path prefix is kept). */
  readonly baseUrl: string;
  /** API token or JWT, sent as `Authorization: Bearer …`. */
  readonly token: string;
  /** A fetch implementation; defaults to the global `fetch`. */
  readonly fetch?: FetchLike;
}

/**
 * Typed client of the keystrata HTTP API: one method per route. `ws` is a workspace id and `env`
 * an environment name. Every failure rejects with a {@link KeystrataApiError}.
 *
 * @example
 * ```ts
 * const client = new KeystrataClient({ baseUrl: 'http://127.0.0.1:8200', token: process.env.KEYSTRATA_TOKEN! });
 * const ws = await client.createWorkspace({ name: 'acme' });
 * const { ciphertext } = await client.encrypt(ws.id, 'production', { scope: { type: 'job', id: 'job_1' }, plaintext: 'hello' });
 * const { plaintext } = await client.decrypt(ws.id, 'production', { ciphertext });
 * ```
 */
export class KeystrataClient {
  // Every method is async so that argument checks reject the promise instead of throwing synchronously.
  readonly #http: Transport;

  /** @throws TypeError when the base URL is not an http(s) URL or the token is empty or not header-safe. */
  constructor(options: KeystrataClientOptions) {
    const fetchImpl = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (fetchImpl === undefined) throw new TypeError('No global fetch: pass options.fetch.');
    this.#http = new Transport(normalizeBaseUrl(options.baseUrl), checkToken(options.token), fetchImpl);
  }

  /** `GET /healthz` — liveness and store kind. Sent without the token (the route needs none). */
  async health(): Promise<Health> {
    return this.#http.request({ method: 'GET', path: '/healthz', auth: false });
  }

  /** `POST /v1/workspaces` — creates a workspace (with its `production` environment). */
  async createWorkspace(request: { readonly name: string }): Promise<Workspace> {
    return this.#http.request({ method: 'POST', path: '/v1/workspaces', body: { name: request.name } });
  }

  /** `GET /v1/workspaces/{ws}` — a workspace with its environments. */
  async getWorkspace(ws: string): Promise<Workspace> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}` });
  }

  /** `GET /v1/workspaces` — one page of workspaces (without environments). */
  async listWorkspaces(options: PageOptions = {}): Promise<Page<WorkspaceSummary>> {
    return this.#http.request({ method: 'GET', path: '/v1/workspaces', query: pageQuery(options) });
  }

  /** `POST /v1/workspaces/{ws}/environments` — creates an environment. */
  async createEnvironment(ws: string, request: { readonly name: string }): Promise<Environment> {
    return this.#http.request({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/environments`,
      body: { name: request.name },
    });
  }

  /** `GET …/environments/{env}/keys` — status of the environment's key hierarchy. */
  async keyStatus(ws: string, env: string): Promise<KeyStatus> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/environments/${env}/keys` });
  }

  /** `GET …/environments/{env}/cmk` — the environment's customer main key (no secrets). */
  async getCmk(ws: string, env: string): Promise<CmkInfo> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/environments/${env}/cmk` });
  }

  /**
   * `PUT …/environments/{env}/cmk` — test-and-save: the server wraps and unwraps with the new CMK
   * first; on any failure nothing changes and the error names the cause (`cmk_credentials_rejected`,
   * `cmk_key_disabled`, `cmk_unreachable` …). Then the environment key is re-wrapped under it.
   *
   * With `rotateEnvironmentKey: true` the environment key is replaced instead: a new one under the
   * new CMK, and every key under the old one re-wrapped in the background. Its progress is
   * `repack` of this answer and of {@link getCmk}; both CMKs must stay usable until it is `done`,
   * and the CMK cannot be changed again before (`repack_in_progress`, 409).
   *
   * @example
   * ```ts
   * await client.putCmk(ws, 'production', { provider: 'platform', rotateEnvironmentKey: true });
   * const { repack } = await client.getCmk(ws, 'production'); // { state: 'running', done: 120, total: 400, … }
   * ```
   */
  async putCmk(ws: string, env: string, request: PutCmkRequest): Promise<CmkInfo> {
    return this.#http.request({
      method: 'PUT',
      path: route`/v1/workspaces/${ws}/environments/${env}/cmk`,
      body: { provider: request.provider, config: request.config, rotateEnvironmentKey: request.rotateEnvironmentKey },
    });
  }

  /** `POST …/environments/{env}/encrypt` — encrypts bytes (or a UTF-8 string) under a scope. */
  async encrypt(ws: string, env: string, request: EncryptRequest): Promise<EncryptResult> {
    return this.#http.request({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/environments/${env}/encrypt`,
      body: { scope: request.scope, plaintext: bytesToBase64(toBytes(request.plaintext)), context: request.context },
    });
  }

  /** `POST …/environments/{env}/decrypt` — decrypts a `ks1:` ciphertext, checking `scope` if given. */
  async decrypt(ws: string, env: string, request: DecryptRequest): Promise<DecryptResult> {
    const answer = await this.#http.request<{ plaintext: string; scope: Scope }>({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/environments/${env}/decrypt`,
      body: { ciphertext: request.ciphertext, scope: request.scope, context: request.context },
    });
    return { plaintext: decodePlaintext(answer.plaintext), scope: answer.scope };
  }

  /** `POST …/environments/{env}/objects` — creates a vault object (answer has no value). */
  async createObject(ws: string, env: string, request: CreateObjectRequest): Promise<VaultObject> {
    return this.#http.request({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects`,
      body: { name: request.name, value: request.value, context: request.context, metadata: request.metadata },
    });
  }

  /** `GET …/objects/{id}` — a vault object with its current value. */
  async getObject(ws: string, env: string, id: string): Promise<VaultObjectWithValue> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/environments/${env}/objects/${id}` });
  }

  /** `GET …/objects?name=` — a vault object, found by name, with its current value. */
  async getObjectByName(ws: string, env: string, name: string): Promise<VaultObjectWithValue> {
    // An empty name would turn the lookup into a listing, whose answer has another shape.
    if (name === '') throw invalidArgument('name', 'The object name must not be empty.');
    return this.#http.request({
      method: 'GET',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects`,
      query: { name },
    });
  }

  /** `GET …/objects` — one page of vault objects (without values). */
  async listObjects(ws: string, env: string, options: PageOptions = {}): Promise<Page<VaultObject>> {
    return this.#http.request({
      method: 'GET',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects`,
      query: pageQuery(options),
    });
  }

  /**
   * `PUT …/objects/{id}` — new version; rejects with `version_conflict` if `expectedVersion` is stale.
   * Sends exactly `value` and `expectedVersion`: metadata, name and context cannot be changed.
   */
  async updateObject(ws: string, env: string, id: string, request: UpdateObjectRequest): Promise<VaultObject> {
    return this.#http.request({
      method: 'PUT',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects/${id}`,
      body: { value: request.value, expectedVersion: request.expectedVersion },
    });
  }

  /** `DELETE …/objects/{id}` — deletes a vault object and all its versions. */
  async deleteObject(ws: string, env: string, id: string): Promise<void> {
    await this.#http.request<undefined>({
      method: 'DELETE',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects/${id}`,
    });
  }

  /** `GET …/objects/{id}/versions` — the object's versions, newest first. */
  async listObjectVersions(ws: string, env: string, id: string): Promise<ObjectVersionList> {
    return this.#http.request({
      method: 'GET',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects/${id}/versions`,
    });
  }

  /** `GET …/objects/{id}/versions/{version}` — the object as it was at that version, with its value. */
  async getObjectVersion(ws: string, env: string, id: string, version: number): Promise<VaultObjectWithValue> {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw invalidArgument('version', 'The version must be a positive integer.');
    }
    return this.#http.request({
      method: 'GET',
      path: route`/v1/workspaces/${ws}/environments/${env}/objects/${id}/versions/${version}`,
    });
  }

  /**
   * `POST /v1/workspaces/{ws}/clients` — creates an API client and its first API token. The token is
   * in this answer only (the server keeps a hash): store it now.
   *
   * @example
   * ```ts
   * const { client: app, token } = await client.createClient(ws, { name: 'billing', role: 'app', environments: ['production'] });
   * const billing = new KeystrataClient({ baseUrl, token });
   * ```
   */
  async createClient(ws: string, request: CreateClientRequest): Promise<CreateClientResponse> {
    return this.#http.request({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/clients`,
      body: {
        name: request.name,
        role: request.role,
        environments: request.environments,
        allowedCidrs: request.allowedCidrs,
        tokenTtlSeconds: request.tokenTtlSeconds,
        rateLimitPerSecond: request.rateLimitPerSecond,
      },
    });
  }

  /** `GET /v1/workspaces/{ws}/clients` — one page of the workspace's API clients. */
  async listClients(ws: string, options: PageOptions = {}): Promise<Page<ApiClient>> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/clients`, query: pageQuery(options) });
  }

  /** `GET /v1/workspaces/{ws}/clients/{id}` — an API client with its usage and its working tokens (ids and expiry). */
  async getClient(ws: string, id: string): Promise<ApiClient> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/clients/${id}` });
  }

  /**
   * `PATCH /v1/workspaces/{ws}/clients/{id}` — changes the members given (at least one); lists
   * (environments, allowed CIDRs) are replaced whole. `rateLimitPerSecond: null` restores the default.
   *
   * @example
   * ```ts
   * await client.updateClient(ws, id, { disabled: true });
   * ```
   */
  async updateClient(ws: string, id: string, request: UpdateClientRequest): Promise<ApiClient> {
    const body = {
      name: request.name,
      role: request.role,
      environments: request.environments,
      allowedCidrs: request.allowedCidrs,
      tokenTtlSeconds: request.tokenTtlSeconds,
      rateLimitPerSecond: request.rateLimitPerSecond,
      disabled: request.disabled,
    };
    // An empty patch is refused by the server too; saying so here names the cause without a round trip.
    if (Object.values(body).every((value) => value === undefined)) {
      throw invalidArgument(undefined, 'An update must change at least one member of the client.');
    }
    return this.#http.request({ method: 'PATCH', path: route`/v1/workspaces/${ws}/clients/${id}`, body });
  }

  /** `DELETE /v1/workspaces/{ws}/clients/{id}` — deletes an API client; its tokens and JWTs stop working at once. */
  async deleteClient(ws: string, id: string): Promise<void> {
    await this.#http.request<undefined>({ method: 'DELETE', path: route`/v1/workspaces/${ws}/clients/${id}` });
  }

  /**
   * `POST /v1/workspaces/{ws}/clients/{id}/tokens` — issues a new API token (shown this once); the
   * client's previous tokens keep working for `graceSeconds` (default: the server's setting), then stop.
   */
  async rotateClientToken(ws: string, id: string, request: RotateTokenRequest = {}): Promise<RotateTokenResponse> {
    return this.#http.request({
      method: 'POST',
      path: route`/v1/workspaces/${ws}/clients/${id}/tokens`,
      body: { graceSeconds: request.graceSeconds },
    });
  }

  /**
   * `POST /v1/auth/token` — exchanges this client's API token for a short-lived JWT, to be sent as
   * `Authorization: Bearer <jwt>` where a long-lived token should not travel.
   *
   * @example
   * ```ts
   * const { token: jwt } = await client.issueJwt({ ttlSeconds: 900 });
   * const shortLived = new KeystrataClient({ baseUrl, token: jwt });
   * ```
   */
  async issueJwt(request: JwtRequest = {}): Promise<JwtResponse> {
    return this.#http.request({ method: 'POST', path: '/v1/auth/token', body: { ttlSeconds: request.ttlSeconds } });
  }

  /** `GET /v1/workspaces/{ws}/audit` — one page of the workspace's audit log, in seq order. */
  async listAuditEntries(ws: string, options: PageOptions = {}): Promise<Page<AuditEntry>> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/audit`, query: pageQuery(options) });
  }

  /**
   * Every entry of the workspace's audit log, in seq order, fetched one page at a time as the loop
   * consumes them (`options.limit` is the page size; `options.cursor` starts after that seq). Rejects
   * with `invalid_response` if the server's pages do not follow each other in increasing seq.
   *
   * @example
   * ```ts
   * for await (const entry of client.auditEntries(ws)) console.log(JSON.stringify(entry));
   * ```
   */
  async *auditEntries(ws: string, options: PageOptions = {}): AsyncGenerator<AuditEntry, void, undefined> {
    let cursor = options.cursor;
    let lastSeq = -Infinity;
    for (;;) {
      const page = await this.listAuditEntries(ws, { limit: options.limit, cursor });
      for (const entry of page.items) {
        // An export must be complete and in order; a page that goes back would also loop forever.
        if (!(entry.seq > lastSeq)) {
          throw new KeystrataApiError({
            status: 200,
            code: 'invalid_response',
            message: `The audit log went back from seq ${lastSeq} to ${entry.seq} between entries.`,
          });
        }
        lastSeq = entry.seq;
        yield entry;
      }
      if (page.nextCursor === null) return;
      if (page.nextCursor === cursor) {
        throw new KeystrataApiError({ status: 200, code: 'invalid_response', message: 'The audit log answered the same cursor twice.' });
      }
      cursor = page.nextCursor;
    }
  }

  /**
   * `GET /v1/workspaces/{ws}/audit/verify` — checks the whole hash chain of the workspace's audit
   * log on the server. A broken chain is an answer (`ok: false`, `firstBadEntry`, `reason`), not an error.
   */
  async verifyAudit(ws: string): Promise<AuditVerifyResponse> {
    return this.#http.request({ method: 'GET', path: route`/v1/workspaces/${ws}/audit/verify` });
  }
}

function normalizeBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`Invalid base URL ${JSON.stringify(baseUrl)}: expected e.g. http://127.0.0.1:8200.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`Invalid base URL: the protocol must be http: or https: (got ${url.protocol}).`);
  }
  // Credentials in the URL would be echoed by fetch's error messages; the token is the only credential.
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('Invalid base URL: it must not contain a user name or password.');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new TypeError('Invalid base URL: it must not have a query or a fragment.');
  }
  return url.href.replace(/\/+$/, '');
}

function checkToken(token: string): string {
  // Checked here because fetch's own header validation echoes the offending value in its message.
  if (typeof token !== 'string' || token === '') throw new TypeError('The API token must be a non-empty string.');
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError('The API token contains characters not allowed in an HTTP header (spaces, control or non-ASCII characters).');
  }
  return token;
}

function pageQuery(options: PageOptions): Record<string, string | number | undefined> {
  return { limit: options.limit, cursor: options.cursor };
}

function decodePlaintext(base64: unknown): Uint8Array {
  try {
    if (typeof base64 !== 'string') throw new TypeError('not a string');
    return base64ToBytes(base64);
  } catch {
    throw new KeystrataApiError({ status: 200, code: 'invalid_response', message: 'The decrypt answer has no valid base64 plaintext.' });
  }
}

function invalidArgument(field: string | undefined, message: string): KeystrataApiError {
  return new KeystrataApiError({ status: 0, code: 'invalid_request', message, field });
}
