import { randomBytes } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Config } from '../config.js';
import type { Keystrata } from '../service/keystrata.js';
import { installAccessControl } from './access-control.js';
import { ACCESS_SCHEMAS } from './access-schemas.js';
import { KeystrataError } from '../errors.js';
import { installErrorHandling, sendError } from './error-handler.js';
import { installJsonBodyParser } from './json-body.js';
import { auditRoutes } from './routes/audit-routes.js';
import { authRoutes } from './routes/auth-routes.js';
import { clientRoutes } from './routes/client-routes.js';
import { cryptoRoutes } from './routes/crypto-routes.js';
import { keyRoutes } from './routes/key-routes.js';
import { lifecycleRoutes } from './routes/lifecycle-routes.js';
import { objectRoutes } from './routes/object-routes.js';
import { systemRoutes } from './routes/system-routes.js';
import { workspaceRoutes } from './routes/workspace-routes.js';
import { SHARED_SCHEMAS } from './schemas.js';
import type { App } from './types.js';

export type AppOptions = Pick<Config, 'bodyLimitBytes' | 'logLevel'> &
  Partial<Pick<Config, 'trustedProxies' | 'metricsToken' | 'clientRateLimitPerSecond' | 'authFailuresPerMinute'>> & {
    /** Where log lines go (default: stdout). Tests pass a collector to check what gets logged. */
    readonly logStream?: { write(line: string): void };
  };

/** Build the HTTP app over an opened Keystrata. Tests drive it with inject(); server.ts listens. */
export async function buildApp(ks: Keystrata, options: AppOptions): Promise<App> {
  // Request ids: a random per-process prefix and a counter. Unique across nodes and restarts
  // without a CSPRNG call per request (they are identifiers, not secrets).
  const requestIdPrefix = `req_${randomBytes(6).toString('hex')}_`;
  let requestCounter = 0;
  const app = Fastify({
    logger:
      options.logLevel === 'silent'
        ? false
        : {
            level: options.logLevel,
            ...(options.logStream === undefined ? {} : { stream: options.logStream }),
            // Belt and braces: the default serializers log no headers, but if one ever does, the token stays out.
            redact: ['req.headers.authorization', 'headers.authorization'],
          },
    bodyLimit: options.bodyLimitBytes,
    // request.ip is the peer address, unless the peer is a configured reverse proxy: then the
    // nearest X-Forwarded-For hop that is not itself a trusted proxy (proxy-addr semantics). A
    // client talking to us directly can never choose its own address.
    trustProxy: options.trustedProxies !== undefined && options.trustedProxies.length > 0 ? [...options.trustedProxies] : false,
    genReqId: () => requestIdPrefix + (requestCounter++).toString(36),
    // Strict validation: unknown fields are errors (not silently dropped), and no type coercion —
    // "1" is not 1. allErrors stays off so a hostile body cannot make validation expensive.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Shutdown answers are ours (shutting_down, in the usual error body), see below.
    return503OnClosing: false,
    // Errors Fastify raises before routing (e.g. malformed percent-encoding in the URL) get the
    // same error body as everything else.
    frameworkErrors: (error, request, reply) => {
      void sendError(request, reply, new KeystrataError('invalid_request', `The request URL is not valid (${error.code}).`));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'keystrata',
        version: '0.1.0',
        description: 'Multi-tenant key management service and encrypted secret store. Errors: docs/errors.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  for (const schema of [...SHARED_SCHEMAS, ...ACCESS_SCHEMAS]) app.addSchema(schema);
  // The API speaks JSON only. Fastify also parses text/plain by default, which would turn a
  // non-JSON body into a confusing 400 "must be object" instead of 415.
  app.removeContentTypeParser('text/plain');
  installJsonBodyParser(app);
  installErrorHandling(app);

  // From the moment close() starts, requests that have not reached their handler yet (still
  // arriving on open connections, or still uploading their body) are refused with a clear,
  // retryable 503 rather than racing the store and key cache being torn down.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('preHandler', async () => {
    if (closing) throw new KeystrataError('shutting_down', 'The server is shutting down; retry on another node or shortly.');
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // A keep-alive connection that was busy when close() began would otherwise stay open (idle
    // connections are only closed once, at the start) and hold shutdown for the keep-alive timeout.
    if (closing) reply.header('connection', 'close');
    // Responses can carry plaintext and secret values: never let a proxy or browser cache them.
    reply.header('cache-control', 'no-store');
  });

  systemRoutes(app, ks, { metricsToken: options.metricsToken });
  installAccessControl(app, ks, {
    clientRateLimitPerSecond: options.clientRateLimitPerSecond ?? 1000,
    authFailuresPerMinute: options.authFailuresPerMinute ?? 20,
  });
  workspaceRoutes(app, ks);
  keyRoutes(app, ks);
  cryptoRoutes(app, ks);
  objectRoutes(app, ks);
  clientRoutes(app, ks);
  auditRoutes(app, ks);
  authRoutes(app, ks);
  lifecycleRoutes(app, ks);
  return app;
}
