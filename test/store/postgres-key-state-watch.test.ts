/**
 * PostgreSQL specifics of watchKeyStates that the contract suite cannot reach through the Store
 * interface: the listening session (found in pg_stat_activity by its LISTEN), its reconnection,
 * its end at close, and channel isolation between schemas of one database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/core/bytes.js';
import { keyStateChannel } from '../../src/store/postgres/key-state-watcher.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { EVERY_ENVIRONMENT, type EnvironmentRecord, type Store } from '../../src/store/store.js';
import { BACKENDS, TEST_DATABASE_URL } from './backends.js';
import { key, newWorkspace } from './fixtures.js';
import { recorder, untilDelivered } from './key-events.js';

describe('keyStateChannel', () => {
  it('is keystrata_key_state for the default schema, suffixed by the schema otherwise, and never longer than an identifier', () => {
    expect(keyStateChannel(undefined)).toBe('keystrata_key_state');
    expect(keyStateChannel('tenant_a')).toBe('keystrata_key_state_tenant_a');
    const long = 'a'.repeat(63);
    const hashed = keyStateChannel(long);
    expect(hashed.length).toBeLessThanOrEqual(63);
    expect(hashed).toMatch(/^keystrata_key_state_[0-9a-f]{40}$/);
    expect(keyStateChannel(long)).toBe(hashed);
    expect(keyStateChannel(`${'a'.repeat(62)}b`)).not.toBe(hashed);
    expect(keyStateChannel('a'.repeat(43))).toHaveLength(63);
  });
});

describe.runIf(BACKENDS.some((b) => b.name === 'postgres'))('postgres key state watch', () => {
  const schemas: string[] = [];
  const stores: Store[] = [];

  const open = async (schema = `keystrata_test_${randomBytes(6).toString('hex')}`): Promise<{ store: Store; schema: string }> => {
    if (!schemas.includes(schema)) schemas.push(schema);
    const store = await openPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 2 });
    stores.push(store);
    return { store, schema };
  };

  const environment = async (store: Store): Promise<EnvironmentRecord> => {
    const { workspace, first } = newWorkspace();
    await store.createWorkspace(workspace, first);
    return first.environment;
  };

  const withAdmin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  /** Backends of this database listening on the schema's channel (the watcher's session only ever runs LISTEN). */
  const listeningPids = (schema: string): Promise<number[]> =>
    withAdmin(async (client) => {
      const result = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keystrata-watch' AND query = $1`,
        [`LISTEN "${keyStateChannel(schema)}"`],
      );
      return result.rows.map((r) => r.pid);
    });

  const until = async (condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  afterAll(async () => {
    for (const store of stores) await store.close();
    await withAdmin(async (client) => {
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });
  });

  it('opens one listening session on the first subscription only', async () => {
    const { store, schema } = await open();
    const env = await environment(store);
    expect(await listeningPids(schema)).toEqual([]);
    const stops = [store.watchKeyStates(() => undefined), store.watchKeyStates(() => undefined)];
    await untilDelivered(store, store, env);
    expect(await listeningPids(schema)).toHaveLength(1);
    for (const stop of stops) stop();
  });

  it('reconnects by itself when its session is terminated: a later change still arrives within seconds', async () => {
    const { store, schema } = await open();
    const { store: other } = await open(schema);
    const env = await environment(store);
    const heard = recorder();
    const stop = store.watchKeyStates(heard.listener);
    try {
      await untilDelivered(store, other, env);
      const [pid] = await listeningPids(schema);
      expect(pid).toBeDefined();
      await withAdmin((client) => client.query('SELECT pg_terminate_backend($1)', [pid]));
      await until(async () => !(await listeningPids(schema)).includes(pid!));

      // Changes committed while no session listens are not replayed; once it is back, listeners are
      // told to treat every environment as changed (EVERY_ENVIRONMENT), then events arrive again.
      expect(await heard.waitFor((e) => e.environmentId === EVERY_ENVIRONMENT)).toEqual({ environmentId: EVERY_ENVIRONMENT, keyId: EVERY_ENVIRONMENT, state: 'active' });
      const tookMs = await untilDelivered(store, other, env, 5_000);
      expect(tookMs).toBeLessThan(5_000);
      const pids = await listeningPids(schema);
      expect(pids).toHaveLength(1);
      expect(pids[0]).not.toBe(pid);

      const k = await other.insertKeyIfAbsent(key(env.id, 'job', { scopeId: newId() }));
      await other.setKeyState({ environmentId: env.id, keyId: k.id, from: ['active'], to: 'disabled' });
      expect(await heard.waitFor((e) => e.keyId === k.id)).toEqual({ environmentId: env.id, keyId: k.id, state: 'disabled' });
    } finally {
      stop();
    }
  });

  it('close() ends the listening session and stops reconnecting', async () => {
    const { store, schema } = await open();
    const env = await environment(store);
    store.watchKeyStates(() => undefined);
    await untilDelivered(store, store, env);
    expect(await listeningPids(schema)).toHaveLength(1);
    await store.close();
    await until(async () => (await listeningPids(schema)).length === 0);
    // Nothing comes back after a while (a reconnect would have shown within its first delays).
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await listeningPids(schema)).toEqual([]);
    expect(() => store.watchKeyStates(() => undefined)).toThrow(/closed/);
  });

  it('close() right after the first subscription, while the session is still opening, leaves nothing behind', async () => {
    const { store, schema } = await open();
    store.watchKeyStates(() => undefined);
    await store.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await listeningPids(schema)).toEqual([]);
  });

  it('stores on other schemas of the same database do not hear each other', async () => {
    const { store: a } = await open();
    const { store: b } = await open();
    const envA = await environment(a);
    const envB = await environment(b);
    const heardA = recorder();
    const heardB = recorder();
    const stops = [a.watchKeyStates(heardA.listener), b.watchKeyStates(heardB.listener)];
    try {
      await untilDelivered(a, a, envA);
      await untilDelivered(b, b, envB);
      const kB = await b.insertKeyIfAbsent(key(envB.id, 'job', { scopeId: newId() }));
      const kA = await a.insertKeyIfAbsent(key(envA.id, 'job', { scopeId: newId() }));
      await b.setKeyState({ environmentId: envB.id, keyId: kB.id, from: ['active'], to: 'disabled' });
      await a.setKeyState({ environmentId: envA.id, keyId: kA.id, from: ['active'], to: 'disabled' });
      // Notifications reach a session in commit order: once A's later change is heard, B's would have been.
      await heardA.waitFor((e) => e.keyId === kA.id);
      await heardB.waitFor((e) => e.keyId === kB.id);
      expect(heardA.events.some((e) => e.keyId === kB.id)).toBe(false);
      expect(heardB.events.some((e) => e.keyId === kA.id)).toBe(false);
    } finally {
      for (const stop of stops) stop();
    }
  });

  it('ignores payloads on its channel that are not key state events', async () => {
    const { store, schema } = await open();
    const env = await environment(store);
    const heard = recorder();
    const stop = store.watchKeyStates(heard.listener);
    try {
      await untilDelivered(store, store, env);
      const channel = keyStateChannel(schema);
      await withAdmin(async (client) => {
        for (const payload of ['not json', '', 'null', '[]', '{"e":1,"k":"x","s":"active"}', '{"e":"e","k":"k","s":"melted"}', '{"e":"","k":"k","s":"active"}']) {
          await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
        }
      });
      const k = await store.insertKeyIfAbsent(key(env.id, 'job', { scopeId: newId() }));
      await store.setKeyState({ environmentId: env.id, keyId: k.id, from: ['active'], to: 'disabled' });
      await heard.waitFor((e) => e.keyId === k.id);
      // Only events of this environment (the probe's late ones included), the real change among them.
      expect(heard.events.filter((e) => e.environmentId !== env.id)).toEqual([]);
      expect(heard.events.filter((e) => e.keyId === k.id)).toEqual([{ environmentId: env.id, keyId: k.id, state: 'disabled' }]);
    } finally {
      stop();
    }
  });
});
