import type { Keystrata } from '../../service/keystrata.js';
import {
  ERROR_RESPONSES,
  EnvironmentName,
  PageQuery,
  WorkspaceName,
  WorkspaceParams,
  WorkspaceSummary,
  page,
  pageLimit,
} from '../schemas.js';
import { Type } from '@sinclair/typebox';
import { changeAudit } from '../access-control.js';
import type { App } from '../types.js';

export function workspaceRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'audit'>): void {
  const tags = ['workspaces'];

  app.post(
    '/v1/workspaces',
    {
      config: { access: { permission: 'platform.manage', action: 'workspace.create', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Create a workspace (with its "production" environment)',
        body: Type.Object({ name: WorkspaceName }, { additionalProperties: false }),
        response: { 201: Type.Ref('Workspace'), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => reply.code(201).send(await ks.workspaces.createWorkspace(request.body.name, changeAudit(ks, request))),
  );

  app.get(
    '/v1/workspaces',
    {
      config: { access: { permission: 'platform.manage', action: 'workspace.list' } },
      schema: { tags, summary: 'List workspaces', querystring: PageQuery, response: { 200: page(WorkspaceSummary), ...ERROR_RESPONSES } },
    },
    async (request) => ks.workspaces.listWorkspaces({ limit: pageLimit(request.query.limit), cursor: request.query.cursor }),
  );

  app.get(
    '/v1/workspaces/:ws',
    {
      config: { access: { permission: 'workspace.read', action: 'workspace.read' } },
      schema: { tags, summary: 'A workspace and its environments', params: WorkspaceParams, response: { 200: Type.Ref('Workspace'), ...ERROR_RESPONSES } },
    },
    async (request) => ks.workspaces.getWorkspace(request.params.ws),
  );

  app.post(
    '/v1/workspaces/:ws/environments',
    {
      config: { access: { permission: 'environment.create', action: 'environment.create', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Add an environment (gets its own platform-managed CMK and EK)',
        params: WorkspaceParams,
        body: Type.Object({ name: EnvironmentName }, { additionalProperties: false }),
        response: { 201: Type.Ref('Environment'), 409: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => reply.code(201).send(await ks.workspaces.createEnvironment(request.params.ws, request.body.name, changeAudit(ks, request))),
  );
}
