import { Type } from '@sinclair/typebox';
import type { Keystrata } from '../../service/keystrata.js';
import type { App } from '../types.js';

/** Unauthenticated routes: liveness and the API description. Neither reveals tenant data. */
export function systemRoutes(app: App, ks: Pick<Keystrata, 'store'>): void {
  app.get(
    '/healthz',
    { schema: { tags: ['system'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok'), store: Type.String() }) } } },
    async () => ({ status: 'ok' as const, store: ks.store.kind }),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
