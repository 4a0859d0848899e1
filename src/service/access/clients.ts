import { newId } from '../../core/bytes.js';
import { KeystrataError, invalidRequest } from '../../errors.js';
import {
  StoreConflictError,
  type ClientPatch,
  type ClientRecord,
  type ClientRole,
  type ClientTokenRecord,
  type ClientWithUsage,
  type Page,
  type Store,
} from '../../store/store.js';
import type { ChangeAudit } from '../audit/audit-event.js';
import type { Clock } from '../clock.js';
import { generateApiToken } from './api-tokens.js';
import { ALLOW_ANY, parseCidr } from './ip-allowlist.js';
import { ALL_ENVIRONMENTS, grantsEnvironment } from './permissions.js';
import type { Principal } from './principal.js';

export interface ClientView extends ClientWithUsage {
  /** Tokens that still work: ids and expiry only. */
  readonly tokens: readonly { readonly id: string; readonly createdAt: Date; readonly expiresAt: Date }[];
}

export interface IssuedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: Date;
}

export interface CreateClientInput {
  readonly name: string;
  readonly role: ClientRole;
  readonly environments?: readonly string[] | undefined;
  readonly allowedCidrs?: readonly string[] | undefined;
  readonly tokenTtlSeconds?: number | undefined;
  readonly rateLimitPerSecond?: number | null | undefined;
}

export type UpdateClientInput = Partial<{ -readonly [K in keyof ClientPatch]: ClientPatch[K] }>;

export interface ClientServiceDeps {
  readonly store: Pick<
    Store,
    | 'getWorkspace'
    | 'listEnvironments'
    | 'createClient'
    | 'getClient'
    | 'listClients'
    | 'updateClient'
    | 'deleteClient'
    | 'addClientToken'
    | 'listClientTokens'
  >;
  readonly clock: Clock;
  readonly defaults: { readonly tokenTtlSeconds: number; readonly rotationGraceSeconds: number };
  /** Called after any change to a client or its tokens, so cached authentication state is dropped at once. */
  readonly onChange: (clientId: string) => void;
  /** Usage counted on this node and not yet flushed to the store. */
  readonly pendingUsage?: (clientId: string) => { requests: number; failures: number; lastUsedAt: Date; lastUsedIp: string } | undefined;
}

export type ClientService = ReturnType<typeof createClientService>;

export function createClientService(deps: ClientServiceDeps) {
  const { store, clock, defaults, onChange } = deps;

  const notFound = (id: string) => new KeystrataError('client_not_found', `No API client ${id} in this workspace.`);
  const duplicate = (name: string) => new KeystrataError('already_exists', `An API client named "${name}" already exists in this workspace.`);

  async function requireWorkspace(workspaceId: string): Promise<void> {
    if (!(await store.getWorkspace(workspaceId))) throw new KeystrataError('workspace_not_found', `Workspace ${workspaceId} does not exist.`);
  }

  function canonicalCidrs(cidrs: readonly string[]): string[] {
    const out: string[] = [];
    for (const [i, text] of cidrs.entries()) {
      try {
        const canonical = parseCidr(text).text;
        if (!out.includes(canonical)) out.push(canonical);
      } catch {
        throw invalidRequest(`allowedCidrs.${i}`, `"${text}" is not an IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, 2001:db8::/32).`);
      }
    }
    return out;
  }

  /**
   * The environments to grant: names that exist in the workspace (a typo must not become a grant
   * that silently matches a future environment), or "*". A client can never grant an environment
   * it does not have itself.
   */
  async function checkedEnvironments(workspaceId: string, requested: readonly string[], grantor: Principal): Promise<string[]> {
    if (requested.includes(ALL_ENVIRONMENTS)) {
      if (requested.length > 1) throw invalidRequest('environments', '"*" already grants every environment; list it alone.');
      if (grantor.kind === 'client' && !grantor.client.environments.includes(ALL_ENVIRONMENTS)) {
        throw new KeystrataError('forbidden', 'A client cannot grant environments it does not have ("*").');
      }
      return [ALL_ENVIRONMENTS];
    }
    const existing = new Set((await store.listEnvironments(workspaceId)).map((e) => e.name));
    for (const [i, name] of requested.entries()) {
      if (!existing.has(name)) throw invalidRequest(`environments.${i}`, `Workspace ${workspaceId} has no environment named "${name}".`);
      if (grantor.kind === 'client' && !grantsEnvironment(grantor.client, name)) {
        throw new KeystrataError('forbidden', `A client cannot grant environment "${name}", which it does not have.`);
      }
    }
    return [...requested].sort();
  }

  /**
   * A client may only change, rotate or delete clients whose environments it has itself: rotating
   * the token of a client with wider access would hand the grantor that access (a staging-only
   * admin rotating a "*" client's token gets a token for production).
   */
  function checkManages(grantor: Principal, target: Pick<ClientRecord, 'environments'>): void {
    if (grantor.kind !== 'client') return;
    if (!target.environments.every((name) => grantsEnvironment(grantor.client, name))) {
      throw new KeystrataError('forbidden', 'A client cannot manage a client that has environments it does not have itself.');
    }
  }

  /** The client `id` of the workspace, or the right 404. */
  async function existingClient(workspaceId: string, id: string): Promise<ClientWithUsage> {
    const client = await store.getClient(workspaceId, id);
    if (!client) {
      await requireWorkspace(workspaceId);
      throw notFound(id);
    }
    return client;
  }

  function checkRateLimit(value: number | null | undefined): void {
    if (value !== undefined && value !== null && !(Number.isSafeInteger(value) && value >= 1)) {
      throw invalidRequest('rateLimitPerSecond', 'rateLimitPerSecond must be a positive integer or null.');
    }
  }

  function newToken(clientId: string, ttlSeconds: number): { record: ClientTokenRecord; issued: IssuedToken } {
    const { token, tokenHash } = generateApiToken();
    const now = clock.now();
    const record: ClientTokenRecord = { id: newId(), clientId, tokenHash, createdAt: new Date(now), expiresAt: new Date(now + ttlSeconds * 1000) };
    return { record, issued: { token, tokenId: record.id, expiresAt: record.expiresAt } };
  }

  function withPendingUsage(client: ClientWithUsage): ClientWithUsage {
    const extra = deps.pendingUsage?.(client.id);
    if (extra === undefined) return client;
    const stored = client.usage;
    const newer = stored.lastUsedAt === null || extra.lastUsedAt.getTime() >= stored.lastUsedAt.getTime();
    return {
      ...client,
      usage: {
        requests: stored.requests + extra.requests,
        failures: stored.failures + extra.failures,
        lastUsedAt: newer ? extra.lastUsedAt : stored.lastUsedAt,
        lastUsedIp: newer ? extra.lastUsedIp : stored.lastUsedIp,
      },
    };
  }

  async function view(stored: ClientWithUsage): Promise<ClientView> {
    const client = withPendingUsage(stored);
    const now = clock.now();
    const tokens = (await store.listClientTokens(client.id))
      .filter((t) => t.expiresAt.getTime() > now)
      .map(({ id, createdAt, expiresAt }) => ({ id, createdAt, expiresAt }));
    return { ...client, tokens };
  }

  function targetOf(client: Pick<ClientRecord, 'id' | 'name'>): Record<string, string> {
    return { clientId: client.id, clientName: client.name };
  }

  async function get(workspaceId: string, id: string): Promise<ClientView> {
    const client = await store.getClient(workspaceId, id);
    if (!client) {
      await requireWorkspace(workspaceId);
      throw notFound(id);
    }
    return view(client);
  }

  return {
    async create(workspaceId: string, input: CreateClientInput, grantor: Principal, audit: ChangeAudit): Promise<{ client: ClientView } & IssuedToken> {
      await requireWorkspace(workspaceId);
      checkRateLimit(input.rateLimitPerSecond);
      const now = new Date(clock.now());
      const client: ClientRecord = {
        id: newId(),
        workspaceId,
        name: input.name,
        role: input.role,
        environments: await checkedEnvironments(workspaceId, input.environments ?? [ALL_ENVIRONMENTS], grantor),
        allowedCidrs: canonicalCidrs(input.allowedCidrs ?? ALLOW_ANY),
        tokenTtlSeconds: input.tokenTtlSeconds ?? defaults.tokenTtlSeconds,
        rateLimitPerSecond: input.rateLimitPerSecond ?? null,
        disabled: false,
        createdAt: now,
        updatedAt: now,
      };
      const { record, issued } = newToken(client.id, client.tokenTtlSeconds);
      try {
        await store.createClient(client, record, await audit({ target: { ...targetOf(client), role: client.role, tokenId: record.id } }));
      } catch (error) {
        if (error instanceof StoreConflictError) throw duplicate(input.name);
        throw error;
      }
      const usage = { requests: 0, failures: 0, lastUsedAt: null, lastUsedIp: null };
      return { client: { ...client, usage, tokens: [{ id: record.id, createdAt: record.createdAt, expiresAt: record.expiresAt }] }, ...issued };
    },

    get,

    async list(workspaceId: string, options: { limit: number; cursor?: string | undefined }): Promise<Page<ClientView>> {
      await requireWorkspace(workspaceId);
      const page = await store.listClients(workspaceId, options);
      return { items: await Promise.all(page.items.map(view)), nextCursor: page.nextCursor };
    },

    async update(workspaceId: string, id: string, input: UpdateClientInput, grantor: Principal, audit: ChangeAudit): Promise<ClientView> {
      checkRateLimit(input.rateLimitPerSecond);
      const patch: UpdateClientInput = { ...input };
      if (input.environments !== undefined) patch.environments = await checkedEnvironments(workspaceId, input.environments, grantor);
      if (input.allowedCidrs !== undefined) patch.allowedCidrs = canonicalCidrs(input.allowedCidrs);
      if (grantor.kind === 'client' && grantor.client.id === id && (input.disabled === true || (input.role !== undefined && input.role !== 'admin'))) {
        // Not a security boundary (an admin may do it to another admin), but locking yourself out
        // by accident is a support ticket we can spare people.
        throw new KeystrataError('forbidden', 'A client cannot disable itself or drop its own admin role; use another admin client or the admin token.');
      }
      checkManages(grantor, await existingClient(workspaceId, id));
      let updated: ClientRecord | undefined;
      try {
        const changed = Object.keys(patch).sort().join(',');
        updated = await store.updateClient(workspaceId, id, patch, new Date(clock.now()), await audit({ target: { clientId: id, changed } }));
      } catch (error) {
        if (error instanceof StoreConflictError) throw duplicate(input.name ?? '');
        throw error;
      }
      onChange(id);
      if (!updated) {
        await requireWorkspace(workspaceId);
        throw notFound(id);
      }
      return get(workspaceId, id);
    },

    async remove(workspaceId: string, id: string, grantor: Principal, audit: ChangeAudit): Promise<void> {
      checkManages(grantor, await existingClient(workspaceId, id));
      const deleted = await store.deleteClient(workspaceId, id, await audit({ target: { clientId: id } }));
      onChange(id);
      if (!deleted) {
        await requireWorkspace(workspaceId);
        throw notFound(id);
      }
    },

    /** Issue a new token; the client's other tokens keep working for `graceSeconds` at most. */
    async rotateToken(
      workspaceId: string,
      id: string,
      graceSeconds: number | undefined,
      grantor: Principal,
      audit: ChangeAudit,
    ): Promise<IssuedToken & { previousTokensExpireBy: Date }> {
      const client = await existingClient(workspaceId, id);
      checkManages(grantor, client);
      const { record, issued } = newToken(id, client.tokenTtlSeconds);
      const now = clock.now();
      const othersExpireBy = new Date(now + (graceSeconds ?? defaults.rotationGraceSeconds) * 1000);
      const added = await store.addClientToken(workspaceId, id, record, othersExpireBy, new Date(now), await audit({ target: { ...targetOf(client), tokenId: record.id } }));
      onChange(id);
      if (!added) throw notFound(id);
      return { ...issued, previousTokensExpireBy: othersExpireBy };
    },
  };
}
