import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { zeroize } from '../../core/bytes.js';
import { CmkProviderError } from '../provider.js';
import type { VaultTransitSettings } from './vault-transit-config.js';

/**
 * The few Vault HTTP API calls the transit provider makes, over node:http(s). There is no official
 * Node client for Vault; the API is JSON over HTTP with the token in `X-Vault-Token` (and the
 * Enterprise namespace in `X-Vault-Namespace`). node:https rather than fetch: a private CA
 * (`caCert`) is one agent option here, and an abort signal abandons the request.
 *
 * Transport failures come out as CmkProviderError (unreachable / timeout); HTTP answers, errors
 * included, come back as VaultAnswer for the provider to interpret.
 */

export interface VaultAnswer {
  readonly status: number;
  /** The `data` object of a Vault answer (absent on errors and 204s). */
  readonly data: Readonly<Record<string, unknown>> | undefined;
  /** Vault's `errors` messages. Vault never echoes tokens or plaintext in them. */
  readonly errors: readonly string[];
}

export type VaultMethod = 'GET' | 'POST' | 'DELETE';

/** A Vault answer bigger than this is not one of ours (a misconfigured proxy): refuse it. */
const MAX_ANSWER_BYTES = 1024 * 1024;

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED']);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class VaultHttp {
  private readonly agent: HttpAgent;
  private readonly where: string;

  constructor(private readonly settings: VaultTransitSettings) {
    const secure = settings.address.protocol === 'https:';
    // Keep-alive: a TLS handshake per wrap would cost more than the wrap. A custom CA replaces the
    // default trust store for this agent only.
    this.agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: 8, ...(settings.caCert ? { ca: settings.caCert } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 8 });
    this.where = settings.address.host;
  }

  /** `path` is below /v1/ (already URL-encoded). The body may hold key material: it is zeroed once sent. */
  async call(method: VaultMethod, path: string, body: Readonly<Record<string, unknown>> | undefined, signal: AbortSignal | undefined): Promise<VaultAnswer> {
    // JSON is the only way to hand Vault a plaintext; the encoded Buffer is wiped after sending, the
    // intermediate string is left to the GC (strings cannot be zeroed).
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    try {
      try {
        return await this.once(method, path, payload, signal);
      } catch (error) {
        // A kept-alive socket the server closed while idle fails on reuse; that request never
        // reached Vault, so it is sent once more on a fresh connection (Node's documented pattern).
        if ((error as { reusedSocket?: boolean }).reusedSocket === true && errorCode(error) === 'ECONNRESET' && signal?.aborted !== true) {
          return await this.once(method, path, payload, signal);
        }
        throw error;
      }
    } catch (error) {
      throw this.transportFailure(error, signal);
    } finally {
      zeroize(payload);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private once(method: VaultMethod, path: string, payload: Buffer | undefined, signal: AbortSignal | undefined): Promise<VaultAnswer> {
    const { address, token, namespace } = this.settings;
    const url = new URL(`${address.pathname.replace(/\/+$/, '')}/v1/${path}`, address);
    const headers: Record<string, string> = { 'X-Vault-Token': token, Accept: 'application/json' };
    if (namespace !== undefined) headers['X-Vault-Namespace'] = namespace;
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<VaultAnswer>((resolve, reject) => {
      let request: ClientRequest | undefined;
      try {
        request = send(url, { method, headers, agent: this.agent, signal }, (response) => {
          readAnswer(response).then(resolve, reject);
        });
      } catch (error) {
        reject(error);
        return;
      }
      const sent = request;
      sent.on('error', (error: Error) => {
        Object.assign(error, { reusedSocket: sent.reusedSocket });
        reject(error);
      });
      sent.end(payload);
    });
  }

  private transportFailure(error: unknown, signal: AbortSignal | undefined): Error {
    if (error instanceof CmkProviderError) return error;
    const code = errorCode(error);
    if (signal?.aborted === true || code === 'ABORT_ERR') {
      return new CmkProviderError('timeout', `Vault at ${this.where} did not answer in time; the call was abandoned`, { cause: error });
    }
    if (code !== undefined && NETWORK_CODES.has(code)) {
      return new CmkProviderError('unreachable', `cannot reach Vault at ${this.where} (${code})`, { cause: error });
    }
    if (code !== undefined && (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SIGNATURE|SELF_SIGNED|ISSUER/.test(code))) {
      return new CmkProviderError('unreachable', `TLS with Vault at ${this.where} failed (${code}); if Vault's certificate comes from a private CA, set caCert`, { cause: error });
    }
    return new CmkProviderError('unreachable', `the call to Vault at ${this.where} failed (${code ?? (error instanceof Error ? error.name : typeof error)})`, { cause: error });
  }
}

async function readAnswer(response: IncomingMessage): Promise<VaultAnswer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response) {
      const part = chunk as Buffer;
      size += part.length;
      chunks.push(part);
      if (size > MAX_ANSWER_BYTES) {
        response.destroy();
        throw new CmkProviderError('unreachable', `Vault answered with more than ${MAX_ANSWER_BYTES} bytes; not a Vault API answer`);
      }
    }
    const status = response.statusCode ?? 0;
    if (size === 0) return { status, data: undefined, errors: [] };
    const whole = Buffer.concat(chunks, size);
    let parsed: unknown;
    try {
      parsed = JSON.parse(whole.toString('utf8'));
    } catch {
      // A proxy's HTML error page, for instance: the status still tells what happened.
      return { status, data: undefined, errors: [] };
    } finally {
      // A decrypt answer holds the key (base64): wipe the raw bytes; the parsed string is the GC's.
      zeroize(whole);
    }
    const object = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const data = typeof object.data === 'object' && object.data !== null ? (object.data as Record<string, unknown>) : undefined;
    const errors = Array.isArray(object.errors) ? object.errors.filter((e): e is string => typeof e === 'string') : [];
    return { status, data, errors };
  } finally {
    for (const chunk of chunks) zeroize(chunk);
  }
}
