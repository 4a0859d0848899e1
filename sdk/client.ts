import { base64ToBytes, bytesToBase64, toBytes } from './encoding.js';
import { KeystrataApiError } from './errors.js';
import { route, Transport, type FetchLike } from './transport.js';
import type {
  CmkInfo,
  CreateObjectRequest,
  DecryptRequest,
  DecryptResult,
  EncryptRequest,
  EncryptResult,
  Environment,
  Health,
  KeyStatus,
  ObjectVersionList,
  Page,
  PageOptions,
  Scope,
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

function invalidArgument(field: string, message: string): KeystrataApiError {
  return new KeystrataApiError({ status: 0, code: 'invalid_request', message, field });
}
