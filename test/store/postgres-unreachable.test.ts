import { describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { openStore } from '../../src/store/open-store.js';

describe('PostgreSQL unreachable', () => {
  it('opening the store fails with store_unavailable (503), not a raw driver error', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const attempt = openStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/test', sqlitePath: '' });
    await expect(attempt).rejects.toBeInstanceOf(KeystrataError);
    await expect(attempt).rejects.toMatchObject({ code: 'store_unavailable', status: 503 });
  });

  it('the message does not echo the connection URL (it may carry a password)', async () => {
    const error = await openStore({ databaseUrl: 'postgres://keystrata:hunter2-secret@127.0.0.1:1/test', sqlitePath: '' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeystrataError);
    expect((error as KeystrataError).message).not.toContain('hunter2-secret');
    expect((error as KeystrataError).logDetail ?? '').not.toContain('hunter2-secret');
  });
});
