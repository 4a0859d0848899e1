import { KeystrataApiError } from './errors.js';

/** The part of `fetch` the SDK uses; pass your own (a proxy agent, a test fake) in the options. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** One API call, with its path already encoded by {@link route}. */
export interface RequestSpec {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly body?: unknown;
  /** false for the unauthenticated routes (health): the token is not sent where it is not needed. */
  readonly auth?: boolean;
}

/**
 * Builds an API path from a template, percent-encoding every interpolated segment so that names
 * containing `/`, `?` or `#` cannot address another route. `.`, `..` and empty segments are refused
 * because URL parsers collapse them (even percent-encoded) and the request would go elsewhere.
 */
export function route(strings: TemplateStringsArray, ...segments: readonly (string | number)[]): string {
  let path = strings[0] ?? '';
  segments.forEach((segment, i) => {
    const text = String(segment);
    if (text === '' || text === '.' || text === '..') {
      throw new KeystrataApiError({
        status: 0,
        code: 'invalid_request',
        message: `Invalid path segment ${JSON.stringify(text)}: ids and names must not be empty, "." or "..".`,
      });
    }
    path += encodeURIComponent(text) + (strings[i + 1] ?? '');
  });
  return path;
}

/** Sends requests and turns every non-2xx answer or failure into a {@link KeystrataApiError}. */
export class Transport {
  readonly #baseUrl: string;
  readonly #token: string;
  readonly #fetch: FetchLike;

  constructor(baseUrl: string, token: string, fetchImpl: FetchLike) {
    this.#baseUrl = baseUrl;
    this.#token = token;
    this.#fetch = fetchImpl;
  }

  /** Sends the request; resolves to the parsed JSON body, or undefined for 204 No Content. */
  async request<T>(spec: RequestSpec): Promise<T> {
    const url = this.#baseUrl + spec.path + queryString(spec.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (spec.auth !== false) headers.authorization = `Bearer ${this.#token}`;
    const init: RequestInit = {
      method: spec.method,
      headers,
      // Never follow redirects: fetch would replay the request (and, same-origin, the bearer token)
      // to wherever the server points, and a redirected POST silently loses its body.
      redirect: 'manual',
    };
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(spec.body);
    }

    let response: Response;
    try {
      response = await this.#fetch(url, init);
    } catch (err) {
      throw new KeystrataApiError({
        status: 0,
        code: 'network_error',
        message: this.#redact(`Could not reach keystrata at ${this.#baseUrl}: ${describeFailure(err)}`),
        cause: err,
      });
    }

    if (response.status >= 300) throw await this.#errorFrom(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KeystrataApiError({
        status: response.status,
        code: 'invalid_response',
        message: `The server answered ${response.status} with a body that is not JSON.`,
        requestId: response.headers.get('x-request-id') ?? undefined,
      });
    }
  }

  async #errorFrom(response: Response): Promise<KeystrataApiError> {
    const requestId = response.headers.get('x-request-id') ?? undefined;
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), Date.now());
    if (response.status < 400) {
      const location = response.headers.get('location');
      return new KeystrataApiError({
        status: response.status,
        code: 'invalid_response',
        message: this.#redact(
          `The server answered with a redirect (${response.status}${location === null ? '' : ` to ${location}`}); use the final address as the base URL.`,
        ),
        requestId,
      });
    }
    const body = parseErrorBody(await response.text().catch(() => ''));
    if (body === undefined) {
      return new KeystrataApiError({
        status: response.status,
        code: 'invalid_response',
        message: `The server answered ${[response.status, response.statusText].join(' ').trim()} without a keystrata error body.`,
        requestId,
        retryAfterSeconds,
      });
    }
    return new KeystrataApiError({
      status: response.status,
      code: body.code,
      message: this.#redact(body.message),
      requestId: body.requestId ?? requestId,
      field: body.field,
      details: body.details,
      retryAfterSeconds,
    });
  }

  /** Defence in depth: whatever produced a message, the token never leaves in it. */
  #redact(message: string): string {
    return this.#token === '' ? message : message.split(this.#token).join('[redacted]');
  }
}

/**
 * Whole seconds from a `Retry-After` header: delta-seconds (what keystrata sends) or an HTTP date
 * (what a proxy in front of it may send), counted from `now`. Anything else is ignored.
 */
export function parseRetryAfter(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds : undefined;
  }
  // Date.parse also reads forms that are not HTTP dates ("1", "2025"): require a day-name prefix.
  if (!/^[A-Za-z]{3}, /.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function queryString(query: RequestSpec['query']): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** The `error` member of a keystrata error body, checked field by field since it comes off the wire. */
interface ParsedError {
  readonly code: string;
  readonly message: string;
  readonly requestId: string | undefined;
  readonly field: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
}

function parseErrorBody(text: string): ParsedError | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || !isRecord(parsed.error)) return undefined;
  const { code, message, requestId, field, details } = parsed.error;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return {
    code,
    message,
    requestId: typeof requestId === 'string' ? requestId : undefined,
    field: typeof field === 'string' ? field : undefined,
    details: isRecord(details) ? details : undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The most useful line of a fetch failure: Node puts the system error (ECONNREFUSED …) in `cause`. */
function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    const cause: unknown = err.cause;
    if (cause instanceof Error && cause.message !== '') return cause.message;
    return err.message;
  }
  return String(err);
}
