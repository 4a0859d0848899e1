/**
 * The part of appending to the audit chain that both stores share: grouping an append by
 * workspace and computing each entry's seq and link from its workspace's head. The stores supply
 * the locking (each workspace's head is read and written inside one transaction that holds it).
 */
import { AUDIT_GENESIS_LINK, type AuditEntryDraft, type AuditEntryRecord, type AuditHead, type AuditLinker } from './store.js';

/**
 * The entries of an append per workspace: workspaces in ascending id order (the order their heads
 * are locked in, so that two appends touching the same workspaces cannot deadlock), each
 * workspace's entries in the order given.
 */
export function groupByWorkspace(entries: readonly AuditEntryDraft[]): Array<[string, AuditEntryDraft[]]> {
  const groups = new Map<string, AuditEntryDraft[]>();
  for (const entry of entries) {
    const group = groups.get(entry.workspaceId);
    if (group) group.push(entry);
    else groups.set(entry.workspaceId, [entry]);
  }
  return [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Chains one workspace's entries onto its head (undefined: an empty chain): seq head+1, head+2, …,
 * each link computed from the one before. Returns the records to insert and the new head.
 */
export function chainEntries(
  head: AuditHead | undefined,
  entries: readonly AuditEntryDraft[],
  link: AuditLinker,
): { records: AuditEntryRecord[]; head: AuditHead } {
  let seq = head?.seq ?? 0;
  let previous = head?.link ?? AUDIT_GENESIS_LINK;
  const records: AuditEntryRecord[] = [];
  for (const entry of entries) {
    seq += 1;
    // Only the entry's own fields reach the linker, whatever else the caller's object carries.
    const unlinked = {
      id: entry.id, workspaceId: entry.workspaceId, environmentId: entry.environmentId, at: entry.at, sealing: entry.sealing, body: entry.body, seq,
    };
    const next = link(unlinked, previous);
    /* Postcondition: the linker produced a link (a non-Buffer would be stored as something else or fail late). */
    if (!Buffer.isBuffer(next) || next.length === 0) throw new TypeError('store postcondition: the audit linker must return a non-empty Buffer');
    records.push({ ...unlinked, link: next });
    previous = next;
  }
  return { records, head: { seq, link: previous } };
}
