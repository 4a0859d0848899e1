import { describe, expect, it } from 'vitest';
import type { ContractContext } from './context.js';

/** Store.runExclusive: scheduled work runs on one node at a time. */
export function exclusiveContract(ctx: ContractContext): void {
  describe('runExclusive', () => {
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { opened, open };
    };

    it('runs the work and returns its result; a name can run again once it finished', async () => {
      const name = `job-${Math.random()}`;
      expect(await ctx.store.runExclusive(name, async () => 42)).toBe(42);
      expect(await ctx.store.runExclusive(name, async () => 'again')).toBe('again');
    });

    it('while one run holds a name, another run of that name is skipped (undefined); other names are independent; errors propagate and release', async () => {
      const name = `job-${Math.random()}`;
      const holding = gate();
      const first = ctx.store.runExclusive(name, async () => {
        await holding.opened;
        return 'first';
      });
      await new Promise((r) => setTimeout(r, 50));
      let ran = false;
      expect(await ctx.store.runExclusive(name, async () => (ran = true))).toBeUndefined();
      expect(ran).toBe(false);
      expect(await ctx.store.runExclusive(`${name}-other`, async () => 'other')).toBe('other');
      holding.open();
      expect(await first).toBe('first');
      await expect(ctx.store.runExclusive(name, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(await ctx.store.runExclusive(name, async () => 'after error')).toBe('after error');
    });

    if (ctx.kind === 'postgres') {
      it('PostgreSQL: another node (a second store on the database) is skipped while this one holds the name', async () => {
        const name = `job-${Math.random()}`;
        const holding = gate();
        const first = ctx.store.runExclusive(name, async () => {
          await holding.opened;
          return 'held';
        });
        await new Promise((r) => setTimeout(r, 100));
        expect(await ctx.peer.runExclusive(name, async () => 'peer')).toBeUndefined();
        holding.open();
        expect(await first).toBe('held');
        expect(await ctx.peer.runExclusive(name, async () => 'peer')).toBe('peer');
      });
    }
  });
}
