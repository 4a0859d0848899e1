import { Type } from '@sinclair/typebox';
import { sha256Hex } from '../../core/bytes.js';
import { KeystrataError } from '../../errors.js';
import { adminTokenVerifier } from '../../service/admin-token.js';
import type { Keystrata } from '../../service/keystrata.js';
import type { App } from '../types.js';

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

/**
 * Routes outside the workspace access model: liveness and the API description (public; neither
 * reveals tenant data) and the Prometheus metrics, readable with the admin token or the metrics
 * token — they are platform-wide, so no workspace client may read them.
 */
export function systemRoutes(app: App, ks: Pick<Keystrata, 'store' | 'metrics' | 'adminTokenHashes'>, options: { metricsToken?: string | undefined }): void {
  app.get(
    '/healthz',
    { schema: { tags: ['system'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok'), store: Type.String() }) } } },
    async () => ({ status: 'ok' as const, store: ks.store.kind }),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const mayReadMetrics = adminTokenVerifier([...ks.adminTokenHashes, ...(options.metricsToken === undefined ? [] : [sha256Hex(options.metricsToken)])]);
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (admin token or KEYSTRATA_METRICS_TOKEN)',
        response: { 200: Type.String({ description: 'Prometheus text exposition format.' }), 401: Type.Ref('Error') },
      },
    },
    async (request, reply) => {
      const match = BEARER.exec(request.headers.authorization ?? '');
      if (!match || !mayReadMetrics(match[1]!)) {
        throw new KeystrataError('unauthorized', 'Metrics need the admin token or the metrics token (Authorization: Bearer …).');
      }
      return reply.header('content-type', ks.metrics.contentType).send(await ks.metrics.render());
    },
  );
}
