import type { Keystrata } from '../../service/keystrata.js';
import { CmkView, ERROR_RESPONSES, EnvironmentParams, KeyStatusResponse } from '../schemas.js';
import type { App } from '../types.js';

export function keyRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'keyStatus'>): void {
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
      schema: { tags, summary: 'The environment CMK (never its secrets)', params: EnvironmentParams, response: { 200: CmkView, ...ERROR_RESPONSES } },
    },
    async (request) => ks.keyStatus.cmk(await ks.workspaces.resolveEnvironment(request.params.ws, request.params.env)),
  );
}
