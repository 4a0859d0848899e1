import { CmkProviderError, type CmkDescription } from '../provider.js';
import type { KmipAttribute } from './kmip-client.js';
import { STATE_NAMES, State } from './kmip-enums.js';

/**
 * What a KMIP key's lifecycle attributes (KMIP 1.4 §3.22, §4) mean for keystrata. KMIP has no
 * reversible "disable" and no scheduled deletion: a key is Pre-Active until activated, Active, then
 * Deactivated (by Revoke, or by reaching its Deactivation Date) or Compromised, and finally
 * Destroyed. Deactivated keys may still decrypt on servers that follow the spec ("process"
 * usage), never encrypt; PyKMIP refuses both.
 */

/** Attributes asked for by the health probe and by the follow-up on an ambiguous refusal. */
export const STATUS_ATTRIBUTES = ['State', 'Deactivation Date', 'Revocation Reason'] as const;

const EXPIRING_WITHIN_MS = 30 * 24 * 60 * 60 * 1000;

export interface KmipKeyStatus {
  readonly state: number;
  readonly deactivationDate: Date | null;
  /** Revoke sets a Revocation Reason; a key deactivated only by its date has none. */
  readonly revoked: boolean;
}

export function keyStatus(attributes: readonly KmipAttribute[]): KmipKeyStatus | null {
  const state = attributes.find((a) => a.name === 'State')?.value;
  if (state?.type !== 'enumeration') return null;
  const date = attributes.find((a) => a.name === 'Deactivation Date')?.value;
  return {
    state: state.value,
    deactivationDate: date?.type === 'dateTime' ? date.value : null,
    revoked: attributes.some((a) => a.name === 'Revocation Reason'),
  };
}

const stateName = (state: number) => STATE_NAMES[state] ?? `state ${state}`;

/** The health answer for a key in `status` (`version` is its Unique Identifier). `detail` reads after "the key is". */
export function describeStatus(status: KmipKeyStatus, version: string, now: Date): CmkDescription {
  const expiresAt = status.deactivationDate;
  const base = { currentVersion: version, expiresAt };
  const past = expiresAt !== null && expiresAt.getTime() <= now.getTime();
  switch (status.state) {
    case State.Active:
      if (past) return { ...base, state: 'key_expired', detail: 'Active but past its Deactivation Date' };
      if (expiresAt && expiresAt.getTime() - now.getTime() <= EXPIRING_WITHIN_MS) return { ...base, state: 'key_expiring', detail: 'Active; its Deactivation Date is within 30 days' };
      return { ...base, state: 'healthy' };
    case State.PreActive:
      return { ...base, state: 'key_disabled', detail: 'Pre-Active: activate it at the KMIP server' };
    case State.Deactivated:
      if (!status.revoked && past) return { ...base, state: 'key_expired', detail: 'Deactivated: it reached its Deactivation Date' };
      return { ...base, state: 'key_disabled', detail: 'Deactivated (revoked): KMIP cannot re-activate a key, configure a new one' };
    case State.Compromised:
      return { ...base, state: 'key_disabled', detail: 'Compromised: it cannot be used again, configure a new one' };
    case State.Destroyed:
    case State.DestroyedCompromised:
      return { ...base, state: 'key_deleted', detail: `${stateName(status.state)}: what it wrapped cannot be unwrapped` };
    default:
      return { ...base, state: 'key_disabled', detail: `in ${stateName(status.state)}, unknown to keystrata` };
  }
}

/** Why a key in `status` cannot be used, or null when it is Active (the refusal lies elsewhere). */
export function stateFailure(status: KmipKeyStatus, keyId: string, now: Date): CmkProviderError | null {
  if (status.state === State.Active) return null;
  const { state, detail } = describeStatus(status, keyId, now);
  const what = `KMIP key ${keyId} is ${detail ?? stateName(status.state)}`;
  if (state === 'key_expired') return new CmkProviderError('key_expired', what);
  if (state === 'key_deleted') return new CmkProviderError('key_destroyed', what);
  return new CmkProviderError('key_disabled', what);
}
