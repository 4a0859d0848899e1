import { Type } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { ALL_ENVIRONMENTS } from '../../service/access/permissions.js';
import type { Keystrata } from '../../service/keystrata.js';
import { AuditQuery, AuditVerifyResponse } from '../access-schemas.js';
import { ERROR_RESPONSES, WorkspaceParams, pageLimit } from '../schemas.js';
import type { App } from '../types.js';

/** The workspace audit log: read (decrypted, paginated) and verify (hash chain). */
export function auditRoutes(app: App, ks: Pick<Keystrata, 'audit' | 'workspaces'>): void {
  const tags = ['audit'];
  const MORE_ERRORS = { 403: Type.Ref('Error'), 429: Type.Ref('Error'), ...ERROR_RESPONSES };

  app.get(
    '/v1/workspaces/:ws/audit',
    {
      config: { access: { permission: 'audit.read', action: 'audit.read' } },
      schema: {
        tags,
        summary: 'Audit entries in order (cursor = last seq seen)',
        params: WorkspaceParams,
        querystring: AuditQuery,
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('AuditEntry')), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...MORE_ERRORS },
      },
    },
    async (request) => {
      const afterSeq = request.query.cursor === undefined ? 0 : Number(request.query.cursor);
      if (!Number.isSafeInteger(afterSeq)) throw new KeystrataError('invalid_request', 'cursor is not a valid audit cursor.', { field: 'cursor' });
      const workspace = await ks.workspaces.getWorkspace(request.params.ws);
      // A client limited to some environments reads only their entries (and workspace-level ones).
      const principal = request.principal;
      let onlyEnvironments: Set<string> | undefined;
      if (principal?.kind === 'client' && !principal.client.environments.includes(ALL_ENVIRONMENTS)) {
        onlyEnvironments = new Set(workspace.environments.filter((e) => principal.client.environments.includes(e.name)).map((e) => e.id));
      }
      return ks.audit.list(request.params.ws, { afterSeq, limit: pageLimit(request.query.limit), onlyEnvironments });
    },
  );

  app.get(
    '/v1/workspaces/:ws/audit/verify',
    {
      // A log whose chain cannot take entries (its head row deleted, say) must still be diagnosable.
      config: { access: { permission: 'audit.read', action: 'audit.verify', answerIfUnaudited: true } },
      schema: {
        tags,
        summary: 'Check the hash chain: reports the first missing, edited, reordered or inserted entry',
        params: WorkspaceParams,
        response: { 200: AuditVerifyResponse, ...MORE_ERRORS },
      },
    },
    async (request) => {
      await ks.workspaces.getWorkspace(request.params.ws);
      return ks.audit.verify(request.params.ws);
    },
  );
}
