import { CmkProviderError, isCmkProviderError } from '../provider.js';
import { KmipTransportError } from './kmip-connection.js';
import { ResultReason, reasonName } from './kmip-enums.js';
import type { KmipKeyStatus } from './kmip-key-state.js';
import { stateFailure } from './kmip-key-state.js';
import { KmipProtocolError, KmipResultError } from './kmip-messages.js';
import { TtlvError } from './ttlv.js';

/**
 * Maps what went wrong talking to a KMIP server onto CmkFailureReason.
 *
 * KMIP servers answer a key that is not Active with a generic refusal: PyKMIP says Permission
 * Denied for a Pre-Active, Deactivated or Compromised key as for a policy that forbids the caller,
 * and a failed GCM tag check comes back as General Failure. So an ambiguous refusal is followed by
 * one Get Attributes of the key's State: a non-Active key explains it (key_disabled, key_expired,
 * key_destroyed); an Active key leaves the caller's permission (Permission Denied) or the
 * ciphertext (a failed Decrypt) as the cause.
 */

export interface FailureContext {
  readonly operation: 'wrap' | 'unwrap' | 'describe';
  readonly keyId: string;
  /** The version recorded with the blob being unwrapped (the Unique Identifier that wrapped it). */
  readonly keyVersion: string | null;
  /** Reads the key's lifecycle state (one more round trip). */
  readonly status: () => Promise<KmipKeyStatus>;
}

/** Reasons after which a look at the key's State tells what the refusal meant. */
const AMBIGUOUS = new Set<number>([ResultReason.PermissionDenied, ResultReason.WrongKeyLifecycleState, ResultReason.IllegalOperation, ResultReason.GeneralFailure, ResultReason.CryptographicFailure]);

export async function kmipFailure(error: unknown, context: FailureContext): Promise<CmkProviderError> {
  if (isCmkProviderError(error)) return error;
  if (error instanceof KmipTransportError) return transportFailure(error);
  if (error instanceof KmipProtocolError || error instanceof TtlvError) {
    return new CmkProviderError('unreachable', `the KMIP server's answer was not understood: ${error.message}`, { cause: error });
  }
  if (!(error instanceof KmipResultError)) return new CmkProviderError('unreachable', `KMIP ${context.operation} failed (${error instanceof Error ? error.name : typeof error})`, { cause: error });

  const { keyId, operation } = context;
  const said = error.message;
  switch (error.reason) {
    case ResultReason.AuthenticationNotSuccessful:
    case ResultReason.NotAuthorised:
      return new CmkProviderError('credentials_rejected', `the KMIP server did not accept the client certificate (${said})`, { cause: error });
    case ResultReason.ItemNotFound:
    case ResultReason.ObjectNotFound:
      return notFound(context, error);
    case ResultReason.ObjectDestroyed:
      return new CmkProviderError('key_destroyed', `KMIP key ${keyId} is destroyed (${said})`, { cause: error });
    case ResultReason.ObjectArchived:
      return new CmkProviderError('key_disabled', `KMIP key ${keyId} is archived: Recover it at the KMIP server (${said})`, { cause: error });
  }
  if (error.reason === undefined || !AMBIGUOUS.has(error.reason) || operation === 'describe') {
    if (error.reason === ResultReason.PermissionDenied) return permissionDenied(keyId, error);
    return new CmkProviderError('unreachable', `the KMIP server could not ${operation === 'describe' ? 'read' : operation === 'wrap' ? 'encrypt with' : 'decrypt with'} key ${keyId}: ${said}`, { cause: error });
  }

  // Ambiguous: what state is the key in?
  let status: KmipKeyStatus | undefined;
  try {
    status = await context.status();
  } catch (followUp) {
    if (followUp instanceof KmipResultError && (followUp.reason === ResultReason.ItemNotFound || followUp.reason === ResultReason.ObjectNotFound)) return notFound(context, followUp);
    if (followUp instanceof KmipTransportError && followUp.kind === 'aborted') return transportFailure(followUp);
  }
  const byState = status ? stateFailure(status, keyId, new Date()) : null;
  if (byState) return byState;
  if (error.reason === ResultReason.PermissionDenied) return permissionDenied(keyId, error);
  if (error.reason === ResultReason.WrongKeyLifecycleState) return new CmkProviderError('key_disabled', `KMIP key ${keyId} is not in a usable state (${said})`, { cause: error });
  if (operation === 'unwrap' && (error.reason === ResultReason.GeneralFailure || error.reason === ResultReason.CryptographicFailure) && status) {
    // The key is there and Active: the GCM check failed, so the blob or its AAD is not this key's.
    return new CmkProviderError('invalid_ciphertext', `KMIP key ${keyId} does not decrypt this wrapped key (${reasonName(error.reason)})`, { cause: error });
  }
  return new CmkProviderError('unreachable', `the KMIP server failed to ${operation === 'wrap' ? 'encrypt' : 'decrypt'}: ${said}`, { cause: error });
}

function transportFailure(error: KmipTransportError): CmkProviderError {
  switch (error.kind) {
    case 'client_rejected':
    case 'server_untrusted':
      return new CmkProviderError('credentials_rejected', error.message, { cause: error });
    case 'aborted':
      return new CmkProviderError('timeout', error.message, { cause: error });
    case 'unreachable':
      return new CmkProviderError('unreachable', error.message, { cause: error });
  }
}

function permissionDenied(keyId: string, error: KmipResultError): CmkProviderError {
  return new CmkProviderError('permission_denied', `the KMIP server refused the use of key ${keyId} to this client certificate (${error.message})`, { cause: error });
}

/**
 * Not found. A blob recorded as wrapped by this very key proves the key existed: gone now means
 * destroyed (PyKMIP deletes destroyed objects outright), and what it wrapped is lost. Otherwise the
 * Unique Identifier may simply be wrong.
 */
function notFound({ operation, keyId, keyVersion }: FailureContext, error: KmipResultError): CmkProviderError {
  if (operation === 'unwrap' && keyVersion === keyId) {
    return new CmkProviderError('key_destroyed', `KMIP key ${keyId}, which wrapped this key, no longer exists at the KMIP server (destroyed)`, { cause: error });
  }
  return new CmkProviderError('key_not_found', `no KMIP key with Unique Identifier ${keyId} for this client certificate (${error.message})`, { cause: error });
}
