import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';

/** The Fastify instance type routes are written against: TypeBox schemas type the handlers. */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

import type { Permission } from '../service/access/permissions.js';
import type { Principal } from '../service/access/principal.js';

/**
 * What a route requires and how it is audited (route `config.access`). Routes without it (health,
 * OpenAPI, metrics) are outside access control.
 */
export interface RouteAccess {
  /** The permission checked for the caller (src/service/access/permissions.ts). */
  readonly permission: Permission | 'token.exchange';
  /** Stable audit action name, e.g. "data.encrypt". */
  readonly action: string;
  /**
   * True when the route's service call writes the success entry in the same transaction as the
   * change (so the HTTP layer records only failures).
   */
  readonly recordedWithChange?: boolean;
  /**
   * When the entry cannot be written, answer anyway (logged and counted) instead of 503. Only for
   * routes that reveal no data and are needed to diagnose a broken log: audit verify.
   */
  readonly answerIfUnaudited?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Set once the bearer credential is verified. */
    principal?: Principal;
    /** Canonical source address (the peer, or X-Forwarded-For from a trusted proxy). */
    sourceIp?: string;
    /** Identifiers the handler adds to the request's audit entry (key id, scope …). */
    auditTarget?: Record<string, string>;
    /** Set by a handler whose route does two things (list, or read by ?name=) to name the one it did. */
    auditAction?: string;
    /** Stable code of the error the request ended with. */
    errorCode?: string;
  }
}
