import { timingSafeEqual } from 'node:crypto';
import { idToBytes } from '../../core/bytes.js';
import { AUDIT_GENESIS_LINK, type AuditEntryRecord, type AuditHead, type AuditLinker, type AuditSealing } from '../../store/store.js';
import { hmacSha256, type AuditKeys } from './audit-keys.js';

/**
 * The audit hash chain. Each entry's link is
 *
 *   HMAC-SHA256(chainKey(workspace), "ksaudit1" ‖ previousLink ‖ seq ‖ id ‖ at ‖ environment ‖ sealing ‖ len ‖ body)
 *
 * with fixed-width fields (and a length before the only variable one), so no two different
 * entries encode alike. The link covers seq and the previous link, so moving, dropping or
 * inserting a row breaks every link from there on; it covers every stored column, so editing any
 * of them breaks that entry's link.
 */

const DOMAIN = Buffer.from('ksaudit1', 'ascii');
const SEALING_BYTE: Record<AuditSealing, number> = { 'log-key': 1, 'workspace-key': 2 };
const NO_ENVIRONMENT = Buffer.alloc(16);

function entryFields(entry: Omit<AuditEntryRecord, 'link'>): Buffer {
  const fixed = Buffer.alloc(8 + 16 + 8 + 1 + 16 + 1 + 4);
  let at = 0;
  fixed.writeBigUInt64BE(BigInt(entry.seq), at);
  at += 8;
  idToBytes(entry.id).copy(fixed, at);
  at += 16;
  fixed.writeBigInt64BE(BigInt(entry.at.getTime()), at);
  at += 8;
  fixed[at++] = entry.environmentId === null ? 0 : 1;
  (entry.environmentId === null ? NO_ENVIRONMENT : idToBytes(entry.environmentId)).copy(fixed, at);
  at += 16;
  fixed[at++] = SEALING_BYTE[entry.sealing] ?? 0;
  fixed.writeUInt32BE(entry.body.length, at);
  return fixed;
}

/** The link of `entry` after `previousLink`. */
export function auditLink(keys: Pick<AuditKeys, 'chainKey'>, entry: Omit<AuditEntryRecord, 'link'>, previousLink: Buffer): Buffer {
  return hmacSha256(keys.chainKey(entry.workspaceId), DOMAIN, previousLink, entryFields(entry), entry.body);
}

export function auditLinker(keys: Pick<AuditKeys, 'chainKey'>): AuditLinker {
  return (entry, previousLink) => auditLink(keys, entry, previousLink);
}

export interface ChainCheck {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBadEntry?: number;
  readonly reason?: string;
  readonly head: { readonly seq: number; readonly link: string };
}

/**
 * Walks a workspace's chain page by page and reports the first entry that does not fit: a gap in
 * seq (a deleted row), a link that does not verify (an edited, inserted or reordered row), or a
 * stored head that the last entry does not reach (rows deleted from the end).
 */
export async function verifyChain(
  keys: Pick<AuditKeys, 'chainKey'>,
  source: {
    readonly page: (afterSeq: number, limit: number) => Promise<readonly AuditEntryRecord[]>;
    readonly head: () => Promise<AuditHead | undefined>;
  },
  pageSize = 1000,
): Promise<ChainCheck> {
  // Read the head first: entries appended while we walk are then simply beyond it.
  const head = await source.head();
  const headView = { seq: head?.seq ?? 0, link: (head?.link ?? AUDIT_GENESIS_LINK).toString('hex') };
  const bad = (checked: number, seq: number, reason: string): ChainCheck => ({ ok: false, checked, firstBadEntry: seq, reason, head: headView });
  if (head === undefined) {
    // Every append writes the head in the same transaction: entries without one mean it was removed.
    const first = await source.page(0, 1);
    if (first.length > 0) return bad(0, first[0]!.seq, 'entries exist but the chain head is missing');
    return { ok: true, checked: 0, head: headView };
  }
  let previous = AUDIT_GENESIS_LINK;
  let expected = 1;
  let checked = 0;
  const last = head.seq;
  for (;;) {
    const entries = await source.page(expected - 1, pageSize);
    for (const entry of entries) {
      if (entry.seq > last) break;
      if (entry.seq !== expected) return bad(checked, expected, `entry ${expected} is missing (the next stored entry is ${entry.seq})`);
      const link = auditLink(keys, entry, previous);
      if (entry.link.length !== link.length || !timingSafeEqual(entry.link, link)) {
        return bad(checked, entry.seq, `entry ${entry.seq} does not match its link: it was edited, inserted or moved`);
      }
      checked++;
      previous = entry.link;
      expected++;
    }
    if (entries.length < pageSize || entries[entries.length - 1]!.seq >= last) break;
  }
  if (expected - 1 !== last) return bad(checked, expected, `entries ${expected}–${last} are missing (the chain head is at ${last})`);
  if (!(head.link.length === previous.length && timingSafeEqual(head.link, previous))) {
    return bad(checked, last, `the chain head does not match entry ${last}`);
  }
  // Entries past the head we read are normal (appended during the walk), but every append moves
  // the head in the same transaction: an entry the head has NOT moved past means it was rewound.
  const beyond = (await source.page(last, 1))[0];
  if (beyond !== undefined) {
    const headNow = await source.head();
    if (headNow === undefined || headNow.seq < beyond.seq) {
      return bad(checked, beyond.seq, `entry ${beyond.seq} lies beyond the chain head (at ${headNow?.seq ?? 'none'}): the head was moved back`);
    }
  }
  return { ok: true, checked, head: headView };
}
