import type { Keystrata } from '../../service/keystrata.js';
import { Type } from '@sinclair/typebox';
import { changeAudit } from '../access-control.js';
import { CmkView, ERROR_RESPONSES, EnvironmentParams, KeyStatusResponse, PutCmkBody } from '../schemas.js';
import { optionalBody } from '../json-body.js';
import type { App } from '../types.js';

export function keyRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'keyStatus' | 'cmks' | 'audit'>): void {
  const tags = ['keys'];

  app.get(
    '/v1/workspaces/:ws/environments/:env/keys',
    {
      config: { access: { permission: 'keys.read', action: 'keys.status' } },
      schema: {
        tags,
        summary: 'Key hierarchy status: CMK, EK, hourly keys, counts',
        params: EnvironmentParams,
        response: { 200: KeyStatusResponse, ...ERROR_RESPONSES },
      },
    },
    async (request) => ks.keyStatus.status(await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env)),
  );

  app.get(
    '/v1/workspaces/:ws/environments/:env/cmk',
    {
      config: { access: { permission: 'keys.read', action: 'cmk.read' } },
      schema: { tags, summary: 'The environment CMK: provider, config (never its secrets), health', params: EnvironmentParams, response: { 200: CmkView, ...ERROR_RESPONSES } },
    },
    async (request) => ks.cmks.get(await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env)),
  );

  app.post(
    '/v1/workspaces/:ws/environments/:env/cmk/rotate',
    {
      config: { access: { permission: 'cmk.manage', action: 'cmk.rotate', recordedWithChange: true } },
      preValidation: optionalBody,
      schema: {
        tags,
        summary: 'Rotate the CMK: platform-managed → a new one, the environment key re-wrapped; customer-managed → follow the key store\'s current version now',
        params: EnvironmentParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: CmkView, 403: Type.Ref('Error'), 409: Type.Ref('Error'), 422: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const env = await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env);
      return ks.cmks.rotate(env, changeAudit(ks, request));
    },
  );

  app.put(
    '/v1/workspaces/:ws/environments/:env/cmk',
    {
      config: { access: { permission: 'cmk.manage', action: 'cmk.update', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Test-and-save a CMK: a live wrap+unwrap first, then the environment key is re-wrapped under it',
        params: EnvironmentParams,
        body: PutCmkBody,
        response: { 200: CmkView, 403: Type.Ref('Error'), 409: Type.Ref('Error'), 422: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const env = await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env);
      return ks.cmks.put(env, request.body, changeAudit(ks, request));
    },
  );
}
