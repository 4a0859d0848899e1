import { Type } from '@sinclair/typebox';
import type { Keystrata } from '../../service/keystrata.js';
import { changeAudit } from '../access-control.js';
import { ClientParams, CreateClientBody, RotateTokenBody, UpdateClientBody } from '../access-schemas.js';
import { ERROR_RESPONSES, PageQuery, WorkspaceParams, page, pageLimit } from '../schemas.js';
import { optionalBody } from '../json-body.js';
import type { App } from '../types.js';

/** API clients ("access profiles") of a workspace and their tokens. docs/access.md. */
export function clientRoutes(app: App, ks: Pick<Keystrata, 'clients' | 'audit'>): void {
  const tags = ['access'];
  const base = '/v1/workspaces/:ws/clients';
  const MORE_ERRORS = { 403: Type.Ref('Error'), 409: Type.Ref('Error'), 429: Type.Ref('Error'), ...ERROR_RESPONSES };

  app.post(
    base,
    {
      config: { access: { permission: 'clients.manage', action: 'client.create', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Create an API client; its token is in the response, once',
        params: WorkspaceParams,
        body: CreateClientBody,
        response: { 201: Type.Ref('CreateClientResponse'), ...MORE_ERRORS },
      },
    },
    async (request, reply) => {
      const created = await ks.clients.create(request.params.ws, request.body, request.principal!, changeAudit(ks, request));
      return reply.code(201).send(created);
    },
  );

  app.get(
    base,
    {
      config: { access: { permission: 'clients.read', action: 'client.list' } },
      schema: { tags, summary: 'List API clients (with usage)', params: WorkspaceParams, querystring: PageQuery, response: { 200: page(Type.Ref('ApiClient')), ...MORE_ERRORS } },
    },
    async (request) => ks.clients.list(request.params.ws, { limit: pageLimit(request.query.limit), cursor: request.query.cursor }),
  );

  app.get(
    `${base}/:id`,
    {
      config: { access: { permission: 'clients.read', action: 'client.read' } },
      schema: { tags, summary: 'An API client, its usage and live tokens (never token values)', params: ClientParams, response: { 200: Type.Ref('ApiClient'), ...MORE_ERRORS } },
    },
    async (request) => ks.clients.get(request.params.ws, request.params.id),
  );

  app.patch(
    `${base}/:id`,
    {
      config: { access: { permission: 'clients.manage', action: 'client.update', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Change an API client (disable: its next request is refused)',
        params: ClientParams,
        body: UpdateClientBody,
        response: { 200: Type.Ref('ApiClient'), ...MORE_ERRORS },
      },
    },
    async (request) => ks.clients.update(request.params.ws, request.params.id, request.body, request.principal!, changeAudit(ks, request)),
  );

  app.delete(
    `${base}/:id`,
    {
      config: { access: { permission: 'clients.manage', action: 'client.delete', recordedWithChange: true } },
      schema: { tags, summary: 'Delete an API client and its tokens', params: ClientParams, response: { 204: Type.Null(), ...MORE_ERRORS } },
    },
    async (request, reply) => {
      await ks.clients.remove(request.params.ws, request.params.id, request.principal!, changeAudit(ks, request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    `${base}/:id/tokens`,
    {
      config: { access: { permission: 'clients.manage', action: 'client.token.rotate', recordedWithChange: true } },
      preValidation: optionalBody,
      schema: {
        tags,
        summary: 'Rotate: issue a new token; the previous ones keep working for graceSeconds',
        params: ClientParams,
        body: Type.Optional(RotateTokenBody),
        response: { 201: Type.Ref('RotateTokenResponse'), ...MORE_ERRORS },
      },
    },
    async (request, reply) => {
      const rotated = await ks.clients.rotateToken(request.params.ws, request.params.id, request.body?.graceSeconds, request.principal!, changeAudit(ks, request));
      return reply.code(201).send(rotated);
    },
  );
}
