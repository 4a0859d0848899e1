import type { FastifyInstance } from 'fastify';

const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/**
 * Fastify's JSON parser (prototype-poisoning checks included), except that an EMPTY body on a
 * method that takes none is accepted: many clients send `content-type: application/json` on every
 * request, and a DELETE should not fail because of it. An empty body where one is required still
 * fails validation with a clear invalid_request.
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '' && BODYLESS.has(request.method)) {
      done(null, undefined);
      return;
    }
    void parseJson(request, text, done);
  });
}

/**
 * preValidation for POST routes whose body is optional (rotate a token, issue a JWT, disable a key
 * …): a bare POST with no body and no content-type is validated as `{}` — the defaults — instead of
 * failing "body must be object".
 */
export async function optionalBody(request: { body: unknown }): Promise<void> {
  if (request.body === undefined) request.body = {};
}
