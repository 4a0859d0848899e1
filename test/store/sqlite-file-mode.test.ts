import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

it('creates the SQLite database and its WAL files readable by the owner only (0600)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keystrata-mode-'));
  try {
    const path = join(dir, 'nested', 'keystrata.db');
    const store = await openSqliteStore({ path });
    await store.putSetting('probe', 'x');
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(statSync(file).mode & 0o777, file).toBe(0o600);
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
