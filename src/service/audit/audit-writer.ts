import type { AuditEntryDraft, AuditLinker, Store } from '../../store/store.js';

interface Pending {
  readonly entry: AuditEntryDraft;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for audit entries that record no change (reads, data-plane calls, failures). Each
 * caller waits until its entry is committed — a response is never sent for an access that is not
 * on record — but concurrent callers share one transaction: while one batch commits, the next
 * one gathers. Under load this costs one commit per batch instead of one per request.
 */
export function createAuditWriter(deps: { readonly store: Pick<Store, 'appendAudit'>; readonly link: AuditLinker; readonly maxBatch?: number }) {
  const { store, link } = deps;
  const maxBatch = deps.maxBatch ?? 512;
  let queue: Pending[] = [];
  let running: Promise<void> | undefined;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      try {
        await store.appendAudit({ entries: batch.map((p) => p.entry), link });
        for (const p of batch) p.resolve();
      } catch (error) {
        await retryPerWorkspace(batch, error);
      }
    }
  }

  /**
   * A batch is one transaction across workspaces, so one workspace whose chain cannot be appended
   * to (its head row tampered with, say) would fail every other tenant's entries that happened to
   * share the batch. After a failed batch, each workspace's entries are tried again on their own
   * (nothing of the failed transaction was committed; entry ids are unique, so nothing can be
   * written twice): only the waiters of a workspace that still fails are rejected.
   */
  async function retryPerWorkspace(batch: readonly Pending[], error: unknown): Promise<void> {
    const groups = new Map<string, Pending[]>();
    for (const p of batch) {
      const group = groups.get(p.entry.workspaceId);
      if (group) group.push(p);
      else groups.set(p.entry.workspaceId, [p]);
    }
    if (groups.size === 1) {
      for (const p of batch) p.reject(error);
      return;
    }
    await Promise.all(
      [...groups.values()].map(async (group) => {
        try {
          await store.appendAudit({ entries: group.map((p) => p.entry), link });
          for (const p of group) p.resolve();
        } catch (groupError) {
          for (const p of group) p.reject(groupError);
        }
      }),
    );
  }

  function kick(): void {
    if (running !== undefined) return;
    // Start on the next tick so the callers of this tick join the same batch.
    running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(drain)
      .finally(() => {
        running = undefined;
        if (queue.length > 0) kick();
      });
  }

  return {
    /** Resolves once the entry is committed; rejects (store_unavailable …) if it could not be. */
    write(entry: AuditEntryDraft): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        queue.push({ entry, resolve, reject });
        kick();
      });
    },
    /** Waits for everything queued so far. */
    async flush(): Promise<void> {
      while (running !== undefined) await running;
    },
  };
}
