import type { ClientRecord } from '../../store/store.js';
import { ADMIN_ACTOR, type AuditActor } from '../audit/audit-event.js';

/** Who a request acts as, once authenticated. */
export type Principal =
  | { readonly kind: 'admin' }
  | {
      readonly kind: 'client';
      readonly client: ClientRecord;
      /** The API token the request presented, or that the presented JWT was issued against. */
      readonly tokenId: string;
      readonly via: 'api-token' | 'jwt';
    };

export const ADMIN_PRINCIPAL: Principal = Object.freeze({ kind: 'admin' });

export function actorOf(principal: Principal): AuditActor {
  if (principal.kind === 'admin') return ADMIN_ACTOR;
  const { id, name, role } = principal.client;
  return { type: 'client', id, name, role };
}
