import { KeystrataError } from '../../errors.js';
import type { ClientRecord, ClientRole } from '../../store/store.js';
import type { Principal } from './principal.js';

/**
 * What each role may do (docs/access.md has the same table for humans). Clients act only inside
 * their own workspace; environment-scoped permissions also need the environment to be granted.
 * The break-glass admin token may do everything, in every workspace.
 */
export type Permission =
  /** Create and list workspaces: the admin token only. */
  | 'platform.manage'
  | 'workspace.read'
  | 'environment.create'
  | 'keys.read'
  /** Change the environment's CMK (test-and-save). */
  | 'cmk.manage'
  /** Disable and enable keys. */
  | 'keys.manage'
  /** Schedule or cancel destruction of keys, crypto-shred contexts and environments: admins only. */
  | 'keys.destroy'
  /** encrypt, decrypt, vault objects. */
  | 'data.use'
  | 'clients.read'
  | 'clients.manage'
  | 'audit.read';

export const ROLE_PERMISSIONS: Readonly<Record<ClientRole, ReadonlySet<Permission>>> = {
  admin: new Set<Permission>([
    'workspace.read',
    'environment.create',
    'keys.read',
    'cmk.manage',
    'keys.manage',
    'keys.destroy',
    'data.use',
    'clients.read',
    'clients.manage',
    'audit.read',
  ]),
  operator: new Set<Permission>(['workspace.read', 'environment.create', 'keys.read', 'cmk.manage', 'keys.manage']),
  app: new Set<Permission>(['data.use']),
  auditor: new Set<Permission>(['workspace.read', 'keys.read', 'clients.read', 'audit.read']),
};

export const ALL_ENVIRONMENTS = '*';

export function grantsEnvironment(client: Pick<ClientRecord, 'environments'>, name: string): boolean {
  return client.environments.includes(ALL_ENVIRONMENTS) || client.environments.includes(name);
}

export interface AccessTarget {
  /** The workspace named in the URL, if any. */
  readonly workspaceId?: string;
  /** The environment named in the URL, if any. */
  readonly environment?: string;
}

/**
 * Throws unless `principal` may use `permission` on `target`. Another workspace answers exactly
 * like a workspace that does not exist (404), so a client learns nothing about other tenants.
 */
export function authorize(principal: Principal, permission: Permission, target: AccessTarget): void {
  if (principal.kind === 'admin') return;
  const { client } = principal;
  if (permission === 'platform.manage') {
    throw new KeystrataError('forbidden', 'Only the admin token can create or list workspaces.');
  }
  if (target.workspaceId !== undefined && target.workspaceId !== client.workspaceId) {
    throw new KeystrataError('workspace_not_found', `Workspace ${target.workspaceId} does not exist.`);
  }
  if (!ROLE_PERMISSIONS[client.role].has(permission)) {
    throw new KeystrataError('forbidden', `A client with role "${client.role}" may not do this (${permission}).`);
  }
  if (permission === 'environment.create' && !client.environments.includes(ALL_ENVIRONMENTS)) {
    throw new KeystrataError('forbidden', 'Creating environments needs a client granted every environment ("*").');
  }
  if (target.environment !== undefined && !grantsEnvironment(client, target.environment)) {
    throw new KeystrataError('forbidden', `This client may not use environment "${target.environment}".`);
  }
}
