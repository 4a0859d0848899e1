import type { TSchema } from '@sinclair/typebox';

/**
 * A CMK provider: something that holds a Customer Main Key and can wrap and unwrap the one key it
 * ever protects, an environment's EK. Everything else in the hierarchy is wrapped by keystrata
 * itself, so a provider sees one call per environment per cache TTL.
 *
 * One folder per provider (src/providers/<name>/), each exporting a CmkProviderFactory that
 * validates its own config. Every provider passes one contract suite
 * (test/providers/contract/provider-contract.ts).
 */

export interface WrapResult {
  readonly ciphertext: Buffer;
  /** The CMK version that wrapped the key, recorded beside it so old versions keep decrypting. */
  readonly keyVersion: string;
}

/**
 * Why a provider call failed, in terms keystrata acts on. Providers map their service's errors to
 * these; the service maps them to API errors (key_unavailable, key_destroyed, cmk_* on
 * test-and-save, integrity_check_failed).
 */
export type CmkFailureReason =
  /** The credentials in the config are wrong, expired or revoked. */
  | 'credentials_rejected'
  /** Authenticated, but not allowed to wrap/unwrap (encrypt/decrypt) with this key. */
  | 'permission_denied'
  /** The key exists but is disabled (reversible at the customer's KMS). */
  | 'key_disabled'
  /** No such key (or key version) — wrong name, or never existed. */
  | 'key_not_found'
  /** Scheduled for deletion at the KMS (still restorable there). */
  | 'key_pending_deletion'
  /** Destroyed / purged: nothing it wrapped can ever be unwrapped again. */
  | 'key_destroyed'
  /** Past its expiry date at the KMS and refused. */
  | 'key_expired'
  /** The KMS asked us to slow down. */
  | 'throttled'
  /** No answer within the deadline. */
  | 'timeout'
  /** Cannot connect (DNS, refused, TLS, network). */
  | 'unreachable'
  /** The ciphertext or its associated data does not match this key: wrong key, tampered, swapped. */
  | 'invalid_ciphertext';

/** A provider failure. `message` is for operators and must never hold key material or secrets. */
export class CmkProviderError extends Error {
  constructor(
    readonly reason: CmkFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CmkProviderError';
  }
}

export function isCmkProviderError(value: unknown): value is CmkProviderError {
  return value instanceof CmkProviderError;
}

/** What the health probe reports for a CMK (docs/byok.md explains each). */
export type CmkHealthState =
  | 'healthy'
  | 'credentials_expired'
  | 'key_expiring'
  | 'key_expired'
  | 'key_disabled'
  | 'key_pending_deletion'
  | 'key_deleted'
  /** The credentials work but may not use the key (a policy changed). */
  | 'permission_denied'
  | 'unreachable';

export interface CmkDescription {
  readonly state: CmkHealthState;
  /** The version new wraps use now (null when the provider has no versions). */
  readonly currentVersion: string | null;
  /** When the key (or its current version) expires at the KMS, if it does. */
  readonly expiresAt?: Date | null;
  /** When a key pending deletion will be destroyed, if known. */
  readonly deletionAt?: Date | null;
  /** Operator-facing detail (no secrets). */
  readonly detail?: string;
}

/** Per-call options. Providers pass the signal on to their clients so a timed-out call is abandoned. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export interface CmkProvider {
  /** Registry name, e.g. "platform", "aws-kms". */
  readonly name: string;
  /**
   * Wrap `key` (32 bytes) bound to `aad`. Does not take ownership of `key`.
   * Throws CmkProviderError.
   */
  wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult>;
  /**
   * Unwrap a key wrapped by `wrap` with the same `aad`. The caller owns (and must zero) the result.
   * Throws CmkProviderError: invalid_ciphertext if the ciphertext or AAD does not match, another
   * reason if the CMK cannot be used now.
   */
  unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer>;
  /**
   * The key's state at the provider, for the health probe, without wrapping anything. Provider-side
   * states are answers, not errors (a disabled key → `{state: 'key_disabled'}`); it throws
   * CmkProviderError only when it cannot find out (unreachable, timeout, throttled).
   */
  describe(options?: CallOptions): Promise<CmkDescription>;
  /** Release connections and zero any key material held. */
  close(): Promise<void>;
}

/** Who a provider is opened for: the stored CMK it belongs to. */
export interface ProviderIdentity {
  readonly cmkId: string;
  readonly environmentId: string;
}

/** Builds providers of one kind from a config, validating the config itself. */
export interface CmkProviderFactory {
  readonly name: string;
  /**
   * JSON Schema (TypeBox) of the config a customer gives in `PUT …/cmk`. Checked before `open`;
   * unknown fields are refused.
   */
  readonly configSchema: TSchema;
  /**
   * Config fields that are secrets (PIN, client secret, token, private key, key material). They are
   * stored encrypted under a root-derived key, never returned by the API, and never logged.
   */
  readonly secretFields: readonly string[];
  /**
   * Open a provider. Must not call the network (keystrata starts while a KMS is down); failures of
   * the config that only the service can reveal surface on the first call. Throws
   * `configuration_invalid` for a config that does not match the schema.
   */
  open(config: Readonly<Record<string, unknown>>, identity: ProviderIdentity): CmkProvider;
}
