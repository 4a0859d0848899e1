import type { FastifyRequest } from 'fastify';
import { KeystrataError } from '../errors.js';
import { AddressNotAllowed, AuthFailure } from '../service/access/authenticator.js';
import { normalizePeerAddress, tryParseCidr } from '../service/access/ip-allowlist.js';
import { authorize } from '../service/access/permissions.js';
import { actorOf, type Principal } from '../service/access/principal.js';
import type { AuditEvent, ChangeAudit } from '../service/audit/audit-event.js';
import type { Keystrata } from '../service/keystrata.js';
import type { EnvironmentContext } from '../service/workspaces.js';
import type { App } from './types.js';

/**
 * Access control and auditing for every route that declares `config.access`:
 *
 * onRequest   per-address brake on failed authentication → credential → principal → per-client rate
 * preHandler  role / workspace / environment check (after validation, so params are well-formed)
 * onSend      the audit entry for whatever happened (unless the change already wrote it), written
 *             BEFORE the response leaves: an access that cannot be recorded is refused (503)
 * onResponse  metrics and per-client usage counters
 */

export interface AccessOptions {
  readonly clientRateLimitPerSecond: number;
  readonly authFailuresPerMinute: number;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;
const UNAUTHORIZED_MESSAGE = 'A valid bearer token is required (Authorization: Bearer <API token, JWT or admin token>).';

type AccessKs = Pick<Keystrata, 'authenticator' | 'rateLimiter' | 'metrics' | 'audit' | 'usage' | 'workspaces' | 'clock'>;

/**
 * Failed authentication is counted per IPv4 address, but per IPv6 /64: a single host is commonly
 * given a whole /64 and can pick a fresh address for every guess.
 */
function failureBucketOf(ip: string): string {
  return ip.includes(':') ? (tryParseCidr(`${ip}/64`)?.text ?? ip) : ip;
}

function rateLimited(message: string, retryAfterSeconds: number): KeystrataError {
  return new KeystrataError('rate_limited', message, { details: { retryAfterSeconds } });
}

export function installAccessControl(app: App, ks: AccessKs, options: AccessOptions): void {
  const failureRate = options.authFailuresPerMinute / 60;
  const failureBurst = options.authFailuresPerMinute;

  const sourceOf = (request: FastifyRequest): string => {
    if (request.sourceIp === undefined) request.sourceIp = normalizePeerAddress(request.ip) ?? request.ip;
    return request.sourceIp;
  };

  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined) return;
    const ip = sourceOf(request);
    const failureKey = `auth:${failureBucketOf(ip)}`;
    // An address that keeps presenting bad credentials is stopped before its next guess is even
    // looked at: brute force gets 429s, not answers.
    const brake = ks.rateLimiter.check(failureKey, failureRate, failureBurst);
    if (!brake.allowed) {
      ks.metrics.rateLimited('auth_failures');
      throw rateLimited('Too many failed authentication attempts from this address; wait before retrying.', brake.retryAfterSeconds);
    }
    const header = request.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    let principal: Principal;
    try {
      if (!match) throw new AuthFailure('malformed');
      principal = await ks.authenticator.authenticate(match[1]!, ip);
    } catch (error) {
      if (error instanceof AuthFailure) {
        ks.metrics.authFailure(error.reason);
        ks.rateLimiter.take(failureKey, failureRate, failureBurst);
        request.log.info({ reason: error.reason, detail: error.detail, sourceIp: ip }, 'authentication failed');
        throw new KeystrataError('unauthorized', UNAUTHORIZED_MESSAGE);
      }
      if (error instanceof AddressNotAllowed) {
        // A valid credential from the wrong network: recorded against its client (see onSend).
        ks.metrics.authFailure('ip_not_allowed');
        request.principal = error.principal;
        throw new KeystrataError('ip_not_allowed', error.message);
      }
      throw error;
    }
    request.principal = principal;
    if (principal.kind === 'client') {
      const rate = principal.client.rateLimitPerSecond ?? options.clientRateLimitPerSecond;
      const decision = ks.rateLimiter.take(`client:${principal.client.id}`, rate, rate * 2);
      if (!decision.allowed) {
        ks.metrics.rateLimited('client');
        throw rateLimited(`API client ${principal.client.id} is over its rate limit of ${rate} requests per second.`, decision.retryAfterSeconds);
      }
    }
  });

  app.addHook('preHandler', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined) return;
    const principal = request.principal;
    if (principal === undefined) throw new KeystrataError('unauthorized', UNAUTHORIZED_MESSAGE);
    const params = (request.params ?? {}) as { ws?: string; env?: string };
    if (access.permission === 'token.exchange') {
      if (principal.kind !== 'client' || principal.via !== 'api-token') {
        throw new KeystrataError('forbidden', 'JWTs are issued to API clients in exchange for their API token (not for a JWT or the admin token).');
      }
      return;
    }
    authorize(principal, access.permission, { workspaceId: params.ws, environment: params.env });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const access = request.routeOptions.config.access;
    const principal = request.principal;
    if (access === undefined || principal === undefined) return payload;
    const status = reply.statusCode;
    if (status < 400 && access.recordedWithChange) return payload;
    // A request refused by the client's rate limit touched nothing; writing an entry for each would
    // hand the flood the database writes the limit exists to spare. Counted in usage and metrics.
    if (request.errorCode === 'rate_limited') return payload;
    const event = await auditEventFor(request, status, request.auditAction ?? access.action, principal);
    if (event === undefined) return payload;
    try {
      await ks.audit.record(event.event, event.env);
      ks.metrics.auditEntry(event.event.outcome);
      return payload;
    } catch (error) {
      ks.metrics.auditWriteFailure();
      if (access.answerIfUnaudited) {
        request.log.error({ err: error }, 'audit entry could not be written; answering anyway (route reveals no data)');
        return payload;
      }
      request.log.error({ err: error }, 'audit entry could not be written; refusing the response');
      // Fail closed: what was done is not on record, so its result is not handed out.
      request.errorCode = 'store_unavailable';
      reply.code(503).header('content-type', 'application/json; charset=utf-8').header('retry-after', '1');
      return JSON.stringify({
        error: { code: 'store_unavailable', message: 'The audit log could not be written; the request was not completed. Retry shortly.', requestId: request.id },
      });
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ks.metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    const principal = request.principal;
    if (principal?.kind === 'client') {
      ks.usage.record(principal.client.id, reply.statusCode >= 400, new Date(ks.clock.now()), sourceOf(request));
    }
  });

  /** The entry for a request, or undefined when there is no workspace to record it in. */
  async function auditEventFor(
    request: FastifyRequest,
    status: number,
    action: string,
    principal: Principal,
  ): Promise<{ event: AuditEvent; env: EnvironmentContext | undefined } | undefined> {
    const params = (request.params ?? {}) as { ws?: string; env?: string; id?: string; version?: string };
    // A client's entries always go to its own workspace (even when it probed another one); the
    // admin token's go to the workspace it acted on, if that exists.
    const workspaceId = principal.kind === 'client' ? principal.client.workspaceId : params.ws;
    if (workspaceId === undefined) return undefined;
    if (principal.kind === 'admin' && request.errorCode === 'workspace_not_found') return undefined;
    let env: EnvironmentContext | undefined;
    if (params.env !== undefined && params.ws === workspaceId && request.errorCode !== 'environment_not_found') {
      env = await ks.workspaces.resolveEnvironment(workspaceId, params.env).catch(() => undefined);
    }
    const target: Record<string, string> = {};
    if (params.ws !== undefined && params.ws !== workspaceId) target['workspace'] = params.ws;
    if (params.env !== undefined) target['environment'] = params.env;
    if (params.id !== undefined) target['id'] = params.id;
    if (params.version !== undefined) target['version'] = params.version;
    Object.assign(target, request.auditTarget);
    const failed = status >= 400;
    return {
      env,
      event: {
        workspaceId,
        environmentId: env?.environment.id ?? null,
        actor: actorOf(principal),
        action,
        target,
        sourceIp: sourceOf(request),
        requestId: request.id,
        outcome: failed ? 'failure' : 'success',
        ...(failed ? { status, errorCode: request.errorCode ?? 'unknown' } : {}),
      },
    };
  }
}

/** The ChangeAudit for a request: services call it to get the entry they write with their change. */
export function changeAudit(ks: Pick<Keystrata, 'audit'>, request: FastifyRequest): ChangeAudit {
  return async (details) => {
    const access = request.routeOptions.config.access;
    const principal = request.principal;
    if (access === undefined || principal === undefined) throw new Error('changeAudit used on a route without access control');
    const params = (request.params ?? {}) as { ws?: string };
    const workspaceId = details.workspaceId ?? params.ws;
    if (workspaceId === undefined) throw new Error('changeAudit: no workspace for the entry');
    const append = await ks.audit.forChange(
      {
        workspaceId,
        environmentId: details.environment?.environment.id ?? details.environmentId ?? null,
        actor: actorOf(principal),
        action: access.action,
        target: { ...details.target },
        sourceIp: request.sourceIp ?? request.ip,
        requestId: request.id,
        outcome: 'success',
      },
      details.environment,
    );
    return append;
  };
}
