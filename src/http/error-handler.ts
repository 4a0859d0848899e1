import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KeystrataError, isKeystrataError, type ErrorCode } from '../errors.js';

/**
 * One mapping from every failure to `{ error: { code, message, requestId, field?, details? } }`.
 * Unknown errors become internal_error with a generic message: their text may contain anything
 * (SQL, paths, even data) and is only logged.
 */

interface ValidationIssue {
  readonly instancePath?: string;
  readonly params?: { readonly missingProperty?: string; readonly additionalProperty?: string };
  readonly message?: string;
}

function fieldOf(issue: ValidationIssue | undefined, context: string | undefined): string | undefined {
  if (!issue) return undefined;
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  const extra = issue.params?.missingProperty ?? issue.params?.additionalProperty;
  if (extra !== undefined) path.push(extra);
  if (path.length === 0) return context === 'body' ? undefined : context;
  return path.join('.');
}

function fromFastifyError(error: FastifyError): KeystrataError | undefined {
  if (error.validation) {
    const issue = error.validation[0] as ValidationIssue | undefined;
    const field = fieldOf(issue, error.validationContext);
    const reason = issue?.params?.additionalProperty !== undefined ? 'is not allowed' : (issue?.message ?? 'is invalid');
    const where = field ?? (error.validationContext === 'body' ? 'the request body' : (error.validationContext ?? 'the request'));
    return new KeystrataError('invalid_request', `${where} ${reason}.`, field === undefined ? {} : { field });
  }
  const byCode: Partial<Record<string, [ErrorCode, string]>> = {
    FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'The request body is too large.'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Send request bodies as application/json.'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'The Content-Length header does not match the body.'],
    FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_request', 'The request body is empty; send a JSON object.'],
    FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_request', 'The request body is not valid JSON.'],
  };
  const mapped = error.code === undefined ? undefined : byCode[error.code];
  if (mapped) return new KeystrataError(mapped[0], mapped[1]);
  if (error instanceof SyntaxError || error.statusCode === 400) return new KeystrataError('invalid_request', 'The request body is not valid JSON.');
  if (error.statusCode === 413) return new KeystrataError('payload_too_large', 'The request body is too large.');
  if (error.statusCode === 415) return new KeystrataError('unsupported_media_type', 'Send request bodies as application/json.');
  return undefined;
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: KeystrataError): FastifyReply {
  const body: { code: string; message: string; requestId: string; field?: string; details?: Readonly<Record<string, unknown>> } = {
    code: error.code,
    message: error.message,
    requestId: request.id,
  };
  if (error.field !== undefined) body.field = error.field;
  if (error.details !== undefined) body.details = error.details;
  request.errorCode = error.code;
  const retryAfter = error.details?.['retryAfterSeconds'];
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  // Set here as well as in the onSend hook: errors raised before routing skip the hooks.
  return reply.code(error.status).header('x-request-id', request.id).header('cache-control', 'no-store').send({ error: body });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = isKeystrataError(error) ? error : fromFastifyError(error);
    if (known) {
      const level = known.status >= 500 ? 'error' : 'info';
      request.log[level]({ code: known.code, detail: known.logDetail }, 'request failed');
      return sendError(request, reply, known);
    }
    request.log.error({ err: error }, 'unexpected error');
    return sendError(request, reply, new KeystrataError('internal_error', 'An internal error occurred; the request id identifies it in the server log.'));
  });

  // Route patterns by method, collected as routes are added, so that a known path asked for with
  // the wrong method answers 405 with an Allow header instead of a misleading 404.
  const routes: { readonly method: string; readonly pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}/?$`);
    for (const method of [route.method].flat()) routes.push({ method, pattern });
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(request, reply, new KeystrataError('method_not_allowed', `${path} does not accept ${request.method}; it accepts ${allowed.join(', ')}.`));
    }
    return sendError(request, reply, new KeystrataError('route_not_found', `No route ${request.method} ${path}.`));
  });
}
