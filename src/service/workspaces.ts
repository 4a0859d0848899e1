import { newId, randomKey, zeroize } from '../core/bytes.js';
import { bindingBytes } from '../core/envelope.js';
import { ekWrapAad } from '../core/wrapped-key.js';
import { KeystrataError } from '../errors.js';
import { PLATFORM_PROVIDER, type PlatformConfig } from '../providers/platform/platform-provider.js';
import type { CmkProviderFactory } from '../providers/provider.js';
import { StoreConflictError, type EnvironmentRecord, type NewEnvironment, type Page, type Store, type WorkspaceRecord } from '../store/store.js';
import type { ChangeAudit } from './audit/audit-event.js';
import type { Clock } from './clock.js';
import { LruMap } from './lru-map.js';

/** An environment resolved from a request, with the AAD binding every ciphertext in it carries. */
export interface EnvironmentContext {
  readonly workspaceId: string;
  readonly environment: EnvironmentRecord;
  /** bindingBytes({workspaceId, environmentId}) — precomputed for the hot path. */
  readonly binding: Buffer;
}

export interface WorkspaceView extends WorkspaceRecord {
  readonly environments: readonly EnvironmentRecord[];
}

export const FIRST_ENVIRONMENT = 'production';

export interface WorkspaceServiceDeps {
  readonly store: Pick<
    Store,
    'createWorkspace' | 'getWorkspace' | 'listWorkspaces' | 'createEnvironment' | 'listEnvironments' | 'getEnvironmentByName'
  >;
  readonly platform: Pick<CmkProviderFactory, 'open'> & { provision(identity: { cmkId: string; environmentId: string }): PlatformConfig };
  readonly clock: Clock;
}

export type WorkspaceService = ReturnType<typeof createWorkspaceService>;

export function createWorkspaceService(deps: WorkspaceServiceDeps) {
  const { store, platform, clock } = deps;
  // (workspace, environment name) → context. Environments are never renamed, so this only grows stale
  // if an environment is deleted, which issue 5's crypto-shredding will handle by evicting.
  const resolved = new LruMap<string, EnvironmentContext>(10_000);

  /** A new environment with a fresh platform-managed CMK and an EK wrapped by it. */
  async function provisionEnvironment(workspaceId: string, name: string): Promise<NewEnvironment> {
    const createdAt = new Date(clock.now());
    const environment: EnvironmentRecord = { id: newId(), workspaceId, name, createdAt };
    const cmkId = newId();
    const cmk = {
      id: cmkId,
      environmentId: environment.id,
      provider: PLATFORM_PROVIDER,
      config: { ...platform.provision({ cmkId, environmentId: environment.id }) },
      state: 'active' as const,
      createdAt,
    };
    const ekId = newId();
    const ekMaterial = randomKey();
    // A provider of its own, closed (its CMK zeroed) whatever happens: the CMK is not stored yet,
    // and the registry only keeps providers of stored CMKs. A failed create leaves nothing behind.
    const provider = platform.open(cmk.config, { cmkId, environmentId: environment.id });
    try {
      const aad = ekWrapAad({ environmentId: environment.id, ekId, cmkId });
      const { ciphertext, keyVersion } = await provider.wrap(ekMaterial, aad);
      return {
        environment,
        cmk,
        ek: {
          id: ekId,
          environmentId: environment.id,
          kind: 'ek',
          scopeId: null,
          hourStart: null,
          parentId: cmkId,
          wrapped: ciphertext,
          wrappingKeyVersion: keyVersion,
          state: 'active',
          createdAt,
        },
      };
    } finally {
      zeroize(ekMaterial);
      await provider.close();
    }
  }

  async function getWorkspace(id: string): Promise<WorkspaceView> {
    const workspace = await store.getWorkspace(id);
    if (!workspace) throw new KeystrataError('workspace_not_found', `Workspace ${id} does not exist.`);
    return { ...workspace, environments: await store.listEnvironments(id) };
  }

  return {
    async createWorkspace(name: string, audit?: ChangeAudit): Promise<WorkspaceView> {
      const workspace: WorkspaceRecord = { id: newId(), name, createdAt: new Date(clock.now()) };
      const first = await provisionEnvironment(workspace.id, FIRST_ENVIRONMENT);
      const entry = await audit?.({ workspaceId: workspace.id, target: { workspaceName: name, environment: FIRST_ENVIRONMENT, environmentId: first.environment.id } });
      await store.createWorkspace(workspace, first, entry);
      return { ...workspace, environments: [first.environment] };
    },

    getWorkspace,

    listWorkspaces(options: { limit: number; cursor?: string | undefined }): Promise<Page<WorkspaceRecord>> {
      return store.listWorkspaces(options);
    },

    async createEnvironment(workspaceId: string, name: string, audit?: ChangeAudit): Promise<EnvironmentRecord> {
      await getWorkspace(workspaceId);
      // Checked first so that a duplicate costs no key generation; the store's unique index still
      // decides races between concurrent creates.
      if (await store.getEnvironmentByName(workspaceId, name)) throw duplicateEnvironment(workspaceId, name);
      const created = await provisionEnvironment(workspaceId, name);
      try {
        const entry = await audit?.({ environmentId: created.environment.id, target: { environment: name, environmentId: created.environment.id } });
        await store.createEnvironment(created, entry);
      } catch (error) {
        if (error instanceof StoreConflictError) throw duplicateEnvironment(workspaceId, name);
        throw error;
      }
      return created.environment;
    },

    /** The environment `name` of workspace `workspaceId`, or 404 (workspace first, then environment). */
    async resolveEnvironment(workspaceId: string, name: string): Promise<EnvironmentContext> {
      const cacheKey = `${workspaceId}\0${name}`;
      const cached = resolved.get(cacheKey);
      if (cached) return cached;
      const environment = await store.getEnvironmentByName(workspaceId, name);
      if (!environment) {
        await getWorkspace(workspaceId);
        throw new KeystrataError('environment_not_found', `Workspace ${workspaceId} has no environment named "${name}".`);
      }
      const context: EnvironmentContext = Object.freeze({
        workspaceId,
        environment,
        binding: bindingBytes({ workspaceId, environmentId: environment.id }),
      });
      resolved.set(cacheKey, context);
      return context;
    },
  };
}

function duplicateEnvironment(workspaceId: string, name: string): KeystrataError {
  return new KeystrataError('already_exists', `Workspace ${workspaceId} already has an environment named "${name}".`);
}
