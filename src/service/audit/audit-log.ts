import { newId, zeroize } from '../../core/bytes.js';
import { open, seal } from '../../core/aead.js';
import { bindingBytes } from '../../core/envelope.js';
import { isKeystrataError } from '../../errors.js';
import type { AuditAppend, AuditEntryDraft, AuditEntryRecord, AuditSealing, EnvironmentRecord, Store } from '../../store/store.js';
import type { Clock } from '../clock.js';
import type { ScopedCrypto } from '../scoped-crypto.js';
import type { EnvironmentContext } from '../workspaces.js';
import { auditLinker, verifyChain, type ChainCheck } from './audit-chain.js';
import { auditBody, type AuditActor, type AuditBody, type AuditEvent } from './audit-event.js';
import type { AuditKeys } from './audit-keys.js';
import { createAuditWriter } from './audit-writer.js';

/** An entry as the API shows it: the clear columns, plus the body if it could be opened. */
export interface AuditEntryView {
  readonly seq: number;
  readonly id: string;
  readonly at: Date;
  readonly environmentId: string | null;
  readonly link: string;
  readonly unreadable?: string;
  readonly actor?: AuditActor;
  readonly action?: string;
  readonly target?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  readonly requestId?: string;
  readonly outcome?: 'success' | 'failure';
  readonly status?: number;
  readonly errorCode?: string;
}

export interface AuditLogDeps {
  readonly store: Pick<Store, 'appendAudit' | 'listAuditEntries' | 'getAuditHead' | 'getEnvironment'>;
  readonly crypto: Pick<ScopedCrypto, 'encryptBinary' | 'decryptBinary'>;
  readonly keys: AuditKeys;
  readonly clock: Clock;
}

export type AuditLog = ReturnType<typeof createAuditLog>;

const BODY_AAD_PREFIX = Buffer.from('ksaudit-body1\0', 'ascii');

/** The data-plane scope an entry body is sealed for: the entry's own id, under the log key. */
function logScope(entryId: string) {
  return { type: 'log' as const, id: `audit:${entryId}` };
}

export function createAuditLog(deps: AuditLogDeps) {
  const { store, crypto, keys, clock } = deps;
  const link = auditLinker(keys);
  const writer = createAuditWriter({ store, link });

  const workspaceAad = (workspaceId: string, entryId: string): Buffer => Buffer.concat([BODY_AAD_PREFIX, Buffer.from(`${workspaceId}\0${entryId}`, 'utf8')]);

  function environmentContext(workspaceId: string, environment: EnvironmentRecord): EnvironmentContext {
    return { workspaceId, environment, binding: bindingBytes({ workspaceId, environmentId: environment.id }) };
  }

  /**
   * Seal the body under the environment's log key when the entry is about an environment;
   * otherwise — or when that key cannot be used right now (its CMK unavailable, disabled …) —
   * under the workspace audit key, so that an access is never left unrecorded because a
   * customer's KMS is down. The stored `sealing` says which.
   */
  async function sealBody(event: AuditEvent, env: EnvironmentContext | undefined, entryId: string): Promise<{ sealing: AuditSealing; body: Buffer }> {
    const json = Buffer.from(JSON.stringify(auditBody(event)), 'utf8');
    try {
      if (env !== undefined) {
        try {
          const { envelope } = await crypto.encryptBinary(env, logScope(entryId), json);
          return { sealing: 'log-key', body: envelope };
        } catch (error) {
          if (!isKeystrataError(error)) throw error;
        }
      }
      return { sealing: 'workspace-key', body: seal(keys.bodyKey(event.workspaceId), json, workspaceAad(event.workspaceId, entryId)) };
    } finally {
      zeroize(json);
    }
  }

  async function draft(event: AuditEvent, env?: EnvironmentContext): Promise<AuditEntryDraft> {
    const id = newId();
    const { sealing, body } = await sealBody(event, env, id);
    return { id, workspaceId: event.workspaceId, environmentId: event.environmentId, at: new Date(clock.now()), sealing, body };
  }

  async function openBody(entry: AuditEntryRecord, environments: Map<string, EnvironmentContext | undefined>): Promise<AuditBody | { unreadable: string }> {
    let json: Buffer | undefined;
    try {
      if (entry.sealing === 'workspace-key') {
        json = open(keys.bodyKey(entry.workspaceId), entry.body, workspaceAad(entry.workspaceId, entry.id));
        if (json === undefined) return { unreadable: 'integrity_check_failed' };
      } else {
        const envId = entry.environmentId;
        if (envId === null) return { unreadable: 'integrity_check_failed' };
        if (!environments.has(envId)) {
          const record = await store.getEnvironment(envId);
          environments.set(envId, record && record.workspaceId === entry.workspaceId ? environmentContext(entry.workspaceId, record) : undefined);
        }
        const env = environments.get(envId);
        if (env === undefined) return { unreadable: 'environment_not_found' };
        json = (await crypto.decryptBinary(env, entry.body, logScope(entry.id))).plaintext;
      }
      return JSON.parse(json.toString('utf8')) as AuditBody;
    } catch (error) {
      // The listing goes on: one unreadable entry (its CMK revoked, say) must not hide the rest.
      if (isKeystrataError(error)) return { unreadable: error.code === 'decryption_failed' ? 'integrity_check_failed' : error.code };
      throw error;
    } finally {
      zeroize(json);
    }
  }

  return {
    /** Entries recording a change, to pass to the store call that makes the change (same transaction). */
    async forChange(event: AuditEvent, env?: EnvironmentContext): Promise<AuditAppend> {
      return { entries: [await draft(event, env)], link };
    },

    /** Record an access that changes nothing (or failed). Resolves once committed. */
    async record(event: AuditEvent, env?: EnvironmentContext): Promise<void> {
      await writer.write(await draft(event, env));
    },

    /** One page of a workspace's log, decrypted, in seq order. `afterSeq` is the cursor. */
    async list(
      workspaceId: string,
      options: { afterSeq: number; limit: number; onlyEnvironments?: ReadonlySet<string> | undefined },
    ): Promise<{ items: AuditEntryView[]; nextCursor: string | null }> {
      const entries = await store.listAuditEntries(workspaceId, { afterSeq: options.afterSeq, limit: options.limit });
      const environments = new Map<string, EnvironmentContext | undefined>();
      const items: AuditEntryView[] = [];
      for (const entry of entries) {
        // A reader limited to some environments sees their entries and workspace-level ones only
        // (a page may then hold fewer than `limit` items; the cursor still moves past all of them).
        if (options.onlyEnvironments && entry.environmentId !== null && !options.onlyEnvironments.has(entry.environmentId)) continue;
        const body = await openBody(entry, environments);
        const clear = { seq: entry.seq, id: entry.id, at: entry.at, environmentId: entry.environmentId, link: entry.link.toString('hex') };
        if ('unreadable' in body) {
          items.push({ ...clear, unreadable: body.unreadable });
        } else {
          const { v: _version, ...rest } = body;
          items.push({ ...clear, ...rest });
        }
      }
      const last = entries[entries.length - 1];
      return { items, nextCursor: entries.length === options.limit && last ? String(last.seq) : null };
    },

    /** Check the whole chain (no key below the CMK is needed: links are MACs over the stored bytes). */
    verify(workspaceId: string): Promise<ChainCheck> {
      return verifyChain(keys, {
        page: (afterSeq, limit) => store.listAuditEntries(workspaceId, { afterSeq, limit }),
        head: () => store.getAuditHead(workspaceId),
      });
    },

    /** Waits for queued entries to commit (shutdown). */
    flush: () => writer.flush(),
  };
}
