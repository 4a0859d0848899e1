import { describe, expect, it } from 'vitest';
import { randomKey } from '../../src/core/bytes.js';
import { platformProviderFactory } from '../../src/providers/platform/platform-provider.js';
import type { CmkProvider } from '../../src/providers/provider.js';
import { ManualClock } from '../../src/service/clock.js';
import { createWorkspaceService } from '../../src/service/workspaces.js';
import { StoreConflictError, type EnvironmentRecord, type NewEnvironment, type WorkspaceRecord } from '../../src/store/store.js';

/** The real platform factory, counting the providers it opens and closes. */
function countingPlatform() {
  const real = platformProviderFactory(randomKey());
  const counts = { opened: 0, closed: 0 };
  return {
    counts,
    platform: {
      provision: real.provision,
      open(config: Readonly<Record<string, unknown>>, identity: { cmkId: string; environmentId: string }): CmkProvider {
        counts.opened += 1;
        const provider = real.open(config, identity);
        return { ...provider, name: provider.name, wrap: provider.wrap.bind(provider), unwrap: provider.unwrap.bind(provider), close: async () => { counts.closed += 1; await provider.close(); } };
      },
    },
  };
}

function memoryStore(options: { conflictOnCreateEnvironment?: boolean } = {}) {
  const workspaces = new Map<string, WorkspaceRecord>();
  const environments: EnvironmentRecord[] = [];
  return {
    async createWorkspace(workspace: WorkspaceRecord, first: NewEnvironment) {
      workspaces.set(workspace.id, workspace);
      environments.push(first.environment);
    },
    async getWorkspace(id: string) {
      return workspaces.get(id);
    },
    async listWorkspaces() {
      return { items: [...workspaces.values()], nextCursor: null };
    },
    async createEnvironment(env: NewEnvironment) {
      // Simulates losing a race: the name was free when checked, taken when inserted.
      if (options.conflictOnCreateEnvironment) throw new StoreConflictError('an environment of that name already exists');
      environments.push(env.environment);
    },
    async listEnvironments(workspaceId: string) {
      return environments.filter((e) => e.workspaceId === workspaceId);
    },
    async getEnvironmentByName(workspaceId: string, name: string) {
      return environments.find((e) => e.workspaceId === workspaceId && e.name === name);
    },
  };
}

describe('workspace service: provisioning leaves no open CMK behind', () => {
  it('closes the provider it opened to wrap each new EK', async () => {
    const { counts, platform } = countingPlatform();
    const service = createWorkspaceService({ store: memoryStore(), platform, clock: new ManualClock() });
    const ws = await service.createWorkspace('acme');
    await service.createEnvironment(ws.id, 'staging');
    expect(counts).toEqual({ opened: 2, closed: 2 });
  });

  it('a duplicate name is refused before any key is generated or provider opened', async () => {
    const { counts, platform } = countingPlatform();
    const service = createWorkspaceService({ store: memoryStore(), platform, clock: new ManualClock() });
    const ws = await service.createWorkspace('acme');
    for (let i = 0; i < 20; i++) await expect(service.createEnvironment(ws.id, 'production')).rejects.toMatchObject({ code: 'already_exists' });
    expect(counts).toEqual({ opened: 1, closed: 1 });
  });

  it('a create that loses the race in the store still closes its provider and answers already_exists', async () => {
    const { counts, platform } = countingPlatform();
    const store = memoryStore({ conflictOnCreateEnvironment: true });
    const service = createWorkspaceService({ store, platform, clock: new ManualClock() });
    const ws = await service.createWorkspace('acme');
    await expect(service.createEnvironment(ws.id, 'staging')).rejects.toMatchObject({ code: 'already_exists' });
    expect(counts).toEqual({ opened: 2, closed: 2 });
  });
});
