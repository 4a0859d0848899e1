import { newId } from '../../core/bytes.js';
import type { AuditAppend, Store } from '../../store/store.js';
import { SYSTEM_ACTOR } from './audit-event.js';
import type { AuditLog } from './audit-log.js';

/**
 * The audit entry of a change keystrata makes on its own (a scheduled destruction, a health-probe
 * state change, a log key's retirement, the end of a repack): actor `system`, source `keystrata`,
 * sealed under the workspace audit key, the environment's name first in its target. Undefined if
 * the environment no longer exists (nothing left to record it against).
 */
export async function systemChangeEntry(
  deps: { readonly store: Pick<Store, 'getEnvironment'>; readonly audit: Pick<AuditLog, 'forChange'> },
  environmentId: string,
  action: string,
  target: Readonly<Record<string, string>>,
  requestPrefix: string,
): Promise<AuditAppend | undefined> {
  const environment = await deps.store.getEnvironment(environmentId);
  if (!environment) return undefined;
  return deps.audit.forChange({
    workspaceId: environment.workspaceId,
    environmentId: environment.id,
    actor: SYSTEM_ACTOR,
    action,
    target: { environment: environment.name, ...target },
    sourceIp: 'keystrata',
    requestId: `${requestPrefix}-${newId()}`,
    outcome: 'success',
  });
}
