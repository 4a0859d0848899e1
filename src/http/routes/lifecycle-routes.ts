import { Type } from '@sinclair/typebox';
import type { Keystrata } from '../../service/keystrata.js';
import { changeAudit } from '../access-control.js';
import { ERROR_RESPONSES, EnvironmentParams, KeyParams, KeyView, ScheduleDestructionBody, ShredContextBody } from '../schemas.js';
import { optionalBody } from '../json-body.js';
import type { App } from '../types.js';

/**
 * Key lifecycle: inspect, disable/enable (admin, operator), schedule or cancel destruction and
 * crypto-shred a key context or the whole environment (admin only). docs/operations.md.
 */
export function lifecycleRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'lifecycle' | 'audit'>): void {
  const tags = ['key lifecycle'];
  const key = '/v1/workspaces/:ws/environments/:env/keys/:keyId';
  const errors = { 403: Type.Ref('Error'), 409: Type.Ref('Error'), ...ERROR_RESPONSES };
  const env = (params: { ws: string; env: string }) => ks.workspaces.resolveEnvironment(params.ws, params.env);

  app.get(
    key,
    {
      config: { access: { permission: 'keys.read', action: 'key.read' } },
      schema: { tags, summary: 'A key of the hierarchy: kind, scope, parent, state, destruction date', params: KeyParams, response: { 200: KeyView, ...errors } },
    },
    async (request) => ks.lifecycle.get(await env(request.params), request.params.keyId),
  );

  const transition = (path: string, summary: string, permission: 'keys.manage' | 'keys.destroy', action: string, run: (e: Awaited<ReturnType<typeof env>>, keyId: string, audit: ReturnType<typeof changeAudit>) => Promise<unknown>) =>
    app.post(
      `${key}/${path}`,
      {
        config: { access: { permission, action, recordedWithChange: true } },
        preValidation: optionalBody,
        schema: { tags, summary, params: KeyParams, body: Type.Optional(Type.Object({}, { additionalProperties: false })), response: { 200: KeyView, ...errors } },
      },
      async (request) => run(await env(request.params), request.params.keyId, changeAudit(ks, request)),
    );

  transition('disable', 'Disable a key (reversible): it and every key below it refuse use at once, on every node', 'keys.manage', 'key.disable', (e, id, a) =>
    ks.lifecycle.disable(e, id, a),
  );
  transition('enable', 'Enable a disabled key', 'keys.manage', 'key.enable', (e, id, a) => ks.lifecycle.enable(e, id, a));
  transition('cancel-destruction', 'Cancel a scheduled destruction (the key comes back disabled)', 'keys.destroy', 'key.cancel-destruction', (e, id, a) =>
    ks.lifecycle.cancelDestruction(e, id, a),
  );

  app.post(
    `${key}/schedule-destruction`,
    {
      config: { access: { permission: 'keys.destroy', action: 'key.schedule-destruction', recordedWithChange: true } },
      preValidation: optionalBody,
      schema: {
        tags,
        summary: 'Schedule destruction: the key stops working now and its material is erased after the waiting period',
        params: KeyParams,
        body: Type.Optional(ScheduleDestructionBody),
        response: { 200: KeyView, ...errors },
      },
    },
    async (request) => ks.lifecycle.scheduleDestruction(await env(request.params), request.params.keyId, request.body?.waitingPeriodDays, changeAudit(ks, request)),
  );

  app.post(
    '/v1/workspaces/:ws/environments/:env/contexts/shred',
    {
      config: { access: { permission: 'keys.destroy', action: 'context.shred', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Crypto-shred a key context: every object and version under it becomes unreadable after the waiting period',
        params: EnvironmentParams,
        body: ShredContextBody,
        response: { 200: KeyView, ...errors },
      },
    },
    async (request) => ks.lifecycle.shredContext(await env(request.params), request.body.context, request.body.waitingPeriodDays, changeAudit(ks, request)),
  );

  app.post(
    '/v1/workspaces/:ws/environments/:env/shred',
    {
      config: { access: { permission: 'keys.destroy', action: 'environment.shred', recordedWithChange: true } },
      preValidation: optionalBody,
      schema: {
        tags,
        summary: 'Crypto-shred the whole environment: its environment key is destroyed after the waiting period',
        params: EnvironmentParams,
        body: Type.Optional(ScheduleDestructionBody),
        response: { 200: KeyView, ...errors },
      },
    },
    async (request) => ks.lifecycle.shredEnvironment(await env(request.params), request.body?.waitingPeriodDays, changeAudit(ks, request)),
  );
}
