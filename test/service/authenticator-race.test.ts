import { describe, expect, it } from 'vitest';
import { apiTokenHash, generateApiToken } from '../../src/service/access/api-tokens.js';
import { createAuthenticator } from '../../src/service/access/authenticator.js';
import { ManualClock } from '../../src/service/clock.js';
import type { ClientRecord, ClientTokenRecord } from '../../src/store/store.js';

// A token lookup that was in flight when its client changed must not put the old client record
// back into the cache: the node that disabled a client refuses its very next request.
describe('authenticator cache and invalidation', () => {
  it('a lookup overlapping invalidateClient is used once but not cached', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const { token, tokenHash } = generateApiToken();
    const client: ClientRecord = {
      id: '7d6f3b1e-0000-4000-8000-00000000c11e',
      workspaceId: '7d6f3b1e-0000-4000-8000-000000000001',
      name: 'app',
      role: 'app',
      environments: ['*'],
      allowedCidrs: ['0.0.0.0/0', '::/0'],
      tokenTtlSeconds: 3600,
      rateLimitPerSecond: null,
      disabled: false,
      createdAt: new Date(clock.now()),
      updatedAt: new Date(clock.now()),
    };
    const record: ClientTokenRecord = { id: '7d6f3b1e-0000-4000-8000-0000000000ff', clientId: client.id, tokenHash, createdAt: new Date(clock.now()), expiresAt: new Date(clock.now() + 3_600_000) };
    let stored = client;
    let lookups = 0;
    let release: (() => void) | undefined;
    const store = {
      async findClientToken(hash: string) {
        lookups++;
        const snapshot = stored;
        if (release === undefined) await new Promise<void>((resolve) => (release = resolve));
        return hash === apiTokenHash(token) ? { token: record, client: snapshot } : undefined;
      },
      async listClientTokens() {
        return [record];
      },
    };
    const authenticator = createAuthenticator({
      store,
      clock,
      adminTokenHashes: [],
      jwtKey: Buffer.alloc(32, 1),
      jwt: { defaultTtlSeconds: 60, maxLifetimeSeconds: 300, clockSkewSeconds: 0 },
    });
    const inFlight = authenticator.authenticate(token, '10.0.0.1');
    await new Promise((r) => setTimeout(r, 10));
    // The client is disabled (and the cache invalidated) while the first lookup is in flight.
    stored = { ...client, disabled: true };
    authenticator.invalidateClient(client.id);
    release!();
    await expect(inFlight).resolves.toMatchObject({ kind: 'client' });
    // The next request must look again, and sees the disabled client.
    await expect(authenticator.authenticate(token, '10.0.0.1')).rejects.toMatchObject({ reason: 'client_disabled' });
    expect(lookups).toBe(2);
  });
});
