/**
 * The Store contract (src/store/store.ts), one suite run against every backend in BACKENDS
 * (KEYSTRATA_TEST_STORES filters them; see backends.ts). The cases live in contract/, grouped by
 * subject; this file owns the per-backend set-up. Most cases share one store per backend and work
 * in their own fresh workspace; a second store on the same database ("peer") stands in for another
 * node; cases that need an empty database open their own location.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { BACKENDS, type StoreLocation } from './backends.js';
import { auditContract } from './contract/audit.js';
import { clientContract } from './contract/clients.js';
import { cmkContract } from './contract/cmks.js';
import type { ContractContext } from './contract/context.js';
import { exclusiveContract } from './contract/exclusive.js';
import { keyContract } from './contract/keys.js';
import { lifecycleContract } from './contract/lifecycle.js';
import { objectContract } from './contract/objects.js';
import { persistenceContract } from './contract/persistence.js';
import { repackContract } from './contract/repack.js';
import { workspaceContract } from './contract/workspaces.js';
import { newWorkspace } from './fixtures.js';

for (const backend of BACKENDS) {
  describe(`store contract: ${backend.name}`, () => {
    let location: StoreLocation | undefined;
    let store: Store | undefined;
    let peer: Store | undefined;
    let openError: unknown;
    const extra: StoreLocation[] = [];
    const opened = (s: Store | undefined): Store => {
      if (s === undefined) throw new Error('the store was not opened (see beforeAll)');
      return s;
    };
    const ctx: ContractContext = {
      kind: backend.name,
      get store() {
        return opened(store);
      },
      get peer() {
        return opened(peer);
      },
      async freshLocation() {
        const l = await backend.newLocation();
        extra.push(l);
        return l;
      },
      async freshEnvironment() {
        const { workspace, first } = newWorkspace();
        await ctx.store.createWorkspace(workspace, first);
        return first.environment;
      },
    };

    beforeAll(async () => {
      location = await backend.newLocation();
      try {
        store = await location.open();
        peer = await location.open();
      } catch (error) {
        openError = error;
      }
    });

    // An unreachable database must fail every case by name: a failed beforeAll would only mark
    // them skipped, and a skipped PostgreSQL run is easy to mistake for a green one.
    beforeEach(() => {
      if (openError !== undefined) throw openError;
    });

    afterAll(async () => {
      await peer?.close();
      await store?.close();
      await location?.destroy().catch((error: unknown) => {
        if (openError === undefined) throw error;
      });
      for (const l of extra) await l.destroy();
    });

    it('reports its kind', () => {
      expect(ctx.store.kind).toBe(backend.name);
    });

    workspaceContract(ctx);
    exclusiveContract(ctx);
    keyContract(ctx);
    objectContract(ctx);
    persistenceContract(ctx);
    clientContract(ctx);
    auditContract(ctx);
    cmkContract(ctx);
    lifecycleContract(ctx);
    repackContract(ctx);
  });
}

describe.runIf(BACKENDS.some((b) => b.name === 'sqlite'))('sqlite specifics', () => {
  it(':memory: works', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      const { workspace, first } = newWorkspace();
      await store.createWorkspace(workspace, first);
      expect(await store.getWorkspace(workspace.id)).toEqual(workspace);
      expect(store.kind).toBe('sqlite');
    } finally {
      await store.close();
    }
  });
});
