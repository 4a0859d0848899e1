import { Type } from '@sinclair/typebox';
import type { Keystrata } from '../../service/keystrata.js';
import {
  CreateObjectBody,
  ERROR_RESPONSES,
  EnvironmentParams,
  ObjectParams,
  ObjectQuery,
  ObjectVersion,
  ObjectVersionParams,
  UpdateObjectBody,
  page,
  pageLimit,
} from '../schemas.js';
import { changeAudit } from '../access-control.js';
import type { App } from '../types.js';

export function objectRoutes(app: App, ks: Pick<Keystrata, 'workspaces' | 'objects' | 'audit'>): void {
  const tags = ['vault objects'];
  const base = '/v1/workspaces/:ws/environments/:env/objects';
  const env = (params: { ws: string; env: string }) => ks.workspaces.resolveEnvironment(params.ws, params.env);

  app.post(
    base,
    {
      config: { access: { permission: 'data.use', action: 'object.create', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Create an object (its value is encrypted under a data key of its key context)',
        params: EnvironmentParams,
        body: CreateObjectBody,
        response: { 201: Type.Ref('VaultObject'), 409: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => reply.code(201).send(await ks.objects.create(await env(request.params), request.body, changeAudit(ks, request))),
  );

  app.get(
    base,
    {
      config: { access: { permission: 'data.use', action: 'object.list' } },
      schema: {
        tags,
        summary: 'List objects (no values), or read one by ?name=',
        params: EnvironmentParams,
        querystring: ObjectQuery,
        response: { 200: Type.Union([page(Type.Ref('VaultObject')), Type.Ref('VaultObjectWithValue')]), ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const resolved = await env(request.params);
      if (request.query.name !== undefined) {
        request.auditAction = 'object.read';
        request.auditTarget = { name: request.query.name };
        const found = await ks.objects.getByName(resolved, request.query.name);
        request.auditTarget['id'] = found.id;
        return found;
      }
      return ks.objects.list(resolved, { limit: pageLimit(request.query.limit), cursor: request.query.cursor });
    },
  );

  app.get(
    `${base}/:id`,
    {
      config: { access: { permission: 'data.use', action: 'object.read' } },
      schema: { tags, summary: 'Read an object with its current value', params: ObjectParams, response: { 200: Type.Ref('VaultObjectWithValue'), ...ERROR_RESPONSES } },
    },
    async (request) => ks.objects.get(await env(request.params), request.params.id),
  );

  app.put(
    `${base}/:id`,
    {
      config: { access: { permission: 'data.use', action: 'object.update', recordedWithChange: true } },
      schema: {
        tags,
        summary: 'Write a new version (only if the object is still at expectedVersion)',
        params: ObjectParams,
        body: UpdateObjectBody,
        response: { 200: Type.Ref('VaultObject'), 409: Type.Ref('Error'), ...ERROR_RESPONSES },
      },
    },
    async (request) => ks.objects.update(await env(request.params), request.params.id, request.body, changeAudit(ks, request)),
  );

  app.delete(
    `${base}/:id`,
    {
      config: { access: { permission: 'data.use', action: 'object.delete', recordedWithChange: true } },
      schema: { tags, summary: 'Delete an object and all its versions', params: ObjectParams, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (request, reply) => {
      await ks.objects.delete(await env(request.params), request.params.id, changeAudit(ks, request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    `${base}/:id/versions`,
    {
      config: { access: { permission: 'data.use', action: 'object.versions' } },
      schema: { tags, summary: 'Versions of an object, newest first', params: ObjectParams, response: { 200: Type.Object({ items: Type.Array(ObjectVersion) }), ...ERROR_RESPONSES } },
    },
    async (request) => ({ items: await ks.objects.versions(await env(request.params), request.params.id) }),
  );

  app.get(
    `${base}/:id/versions/:version`,
    {
      config: { access: { permission: 'data.use', action: 'object.read' } },
      schema: { tags, summary: 'An object at one version, with its value', params: ObjectVersionParams, response: { 200: Type.Ref('VaultObjectWithValue'), ...ERROR_RESPONSES } },
    },
    async (request) => ks.objects.getVersion(await env(request.params), request.params.id, Number(request.params.version)),
  );
}
