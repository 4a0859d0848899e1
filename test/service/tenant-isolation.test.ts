import { describe, expect, it } from 'vitest';
import { openTestKeystrata, testStores } from '../support/test-keystrata.js';

for (const store of testStores()) {
  describe(`tenant isolation of key loading (${store})`, () => {
    it("a request naming another tenant's key id cannot make that tenant's concurrent cold load fail", async () => {
      const first = await openTestKeystrata({ store });
      const a = await first.ks.workspaces.createWorkspace('victim');
      const b = await first.ks.workspaces.createWorkspace('attacker');
      const envA = await first.ks.workspaces.resolveEnvironment(a.id, 'production');
      const scope = { type: 'job', id: 'payroll' } as const;
      const { ciphertext } = await first.ks.crypto.encrypt(envA, scope, Buffer.from('salary'));
      await first.close();

      for (let round = 0; round < 5; round++) {
        // A cold cache every round: the attacker's request starts the load first.
        const t = await openTestKeystrata({ store, handle: first.handle });
        try {
          const victimEnv = await t.ks.workspaces.resolveEnvironment(a.id, 'production');
          const attackerEnv = await t.ks.workspaces.resolveEnvironment(b.id, 'production');
          const [attack, victim] = await Promise.allSettled([
            t.ks.crypto.decrypt(attackerEnv, ciphertext),
            t.ks.crypto.decrypt(victimEnv, ciphertext, scope),
          ]);
          expect(attack.status).toBe('rejected');
          expect((attack as PromiseRejectedResult).reason).toMatchObject({ code: 'decryption_failed' });
          expect(victim.status, String((victim as PromiseRejectedResult).reason)).toBe('fulfilled');
          expect((victim as PromiseFulfilledResult<{ plaintext: Buffer }>).value.plaintext.toString()).toBe('salary');
        } finally {
          await t.close();
        }
      }
      await first.handle.destroy();
    });
  });
}
