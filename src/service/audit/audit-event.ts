import type { ClientRole } from '../../store/store.js';

/** Who acted: the break-glass admin token, an API client (as it was when it acted), or keystrata itself. */
export interface AuditActor {
  readonly type: 'admin' | 'client' | 'system';
  readonly id: string | null;
  readonly name: string | null;
  readonly role: ClientRole | null;
}

export const ADMIN_ACTOR: AuditActor = Object.freeze({ type: 'admin', id: null, name: null, role: null });

/** keystrata's own background work (the CMK health probe, following a KMS-side key rotation). */
export const SYSTEM_ACTOR: AuditActor = Object.freeze({ type: 'system', id: null, name: 'keystrata', role: null });

/**
 * What an audit entry says, before it is sealed. Never plaintext, never a token or key: only
 * identifiers (ids, names, scope ids), the action, the source address and the outcome.
 */
export interface AuditEvent {
  readonly workspaceId: string;
  /** The environment the action was about, when it named one that exists. */
  readonly environmentId: string | null;
  readonly actor: AuditActor;
  /** Stable dotted name, e.g. "data.encrypt", "client.create" (docs/access.md lists them). */
  readonly action: string;
  /** Identifiers of what was acted on: environment name, object id, key id, scope … */
  readonly target: Readonly<Record<string, string>>;
  readonly sourceIp: string;
  readonly requestId: string;
  readonly outcome: 'success' | 'failure';
  /** HTTP status, for failures. */
  readonly status?: number;
  /** Stable error code, for failures. */
  readonly errorCode?: string;
}

/** The sealed part of an entry: everything but workspace, environment and time, which stay in clear. */
export type AuditBody = { readonly v: 1 } & Omit<AuditEvent, 'workspaceId' | 'environmentId'>;

export function auditBody(event: AuditEvent): AuditBody {
  return {
    v: 1,
    actor: event.actor,
    action: event.action,
    target: event.target,
    sourceIp: event.sourceIp,
    requestId: event.requestId,
    outcome: event.outcome,
    ...(event.status === undefined ? {} : { status: event.status }),
    ...(event.errorCode === undefined ? {} : { errorCode: event.errorCode }),
  };
}

/** Where a request came from, for the entries it causes. */
export interface AuditOrigin {
  readonly actor: AuditActor;
  readonly sourceIp: string;
  readonly requestId: string;
}

/** What a change adds to its entry: where it happened and the ids it touched. */
export interface ChangeDetails {
  /** Only when the change creates the workspace (the URL names none yet). */
  readonly workspaceId?: string;
  /** The environment the change is in; its log key seals the entry. */
  readonly environment?: import('../workspaces.js').EnvironmentContext;
  /** For an environment being created (no log key exists yet): the clear column only. */
  readonly environmentId?: string;
  readonly target: Readonly<Record<string, string>>;
}

/**
 * Made by the caller (the HTTP layer knows who, from where and which action), used by a service
 * to obtain the entries it must write in the same transaction as its change.
 */
export type ChangeAudit = (details: ChangeDetails) => Promise<import('../../store/store.js').AuditAppend>;
