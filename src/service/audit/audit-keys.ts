import { createHmac } from 'node:crypto';
import { zeroize } from '../../core/bytes.js';
import { hkdfSha256 } from '../../core/hkdf.js';
import { LruMap } from '../lru-map.js';

/**
 * Per-workspace audit keys, derived from the audit secret (itself derived from the root key, so
 * it never touches the database):
 * - the chain key MACs every entry's link. A database writer can edit rows but cannot recompute
 *   the links, so any edit, deletion, insertion or reordering shows in `audit verify`.
 * - the workspace body key seals bodies that have no environment log key to use (workspace-level
 *   actions, or an environment whose CMK is unavailable), so the audit never depends on a
 *   customer's KMS being up.
 */
export interface AuditKeys {
  chainKey(workspaceId: string): Buffer;
  bodyKey(workspaceId: string): Buffer;
  close(): void;
}

const SALT = Buffer.from('keystrata audit v1', 'utf8');

export function createAuditKeys(auditSecret: Buffer, cacheSize = 4096): AuditKeys {
  const cache = new LruMap<string, Buffer>(cacheSize, (key) => zeroize(key));
  const derive = (purpose: string, workspaceId: string): Buffer => {
    const cacheKey = `${purpose}\0${workspaceId}`;
    let key = cache.get(cacheKey);
    if (key === undefined) {
      key = hkdfSha256(auditSecret, SALT, `keystrata audit ${purpose}\0${workspaceId}`, 32);
      cache.set(cacheKey, key);
    }
    return key;
  };
  return {
    chainKey: (workspaceId) => derive('chain', workspaceId),
    bodyKey: (workspaceId) => derive('body', workspaceId),
    close() {
      cache.clear();
      zeroize(auditSecret);
    },
  };
}

/** HMAC-SHA256 helper for the chain (kept here so both writer and verifier use the same one). */
export function hmacSha256(key: Buffer, ...parts: readonly Uint8Array[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}
