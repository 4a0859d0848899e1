/**
 * A CMK provider: something that holds a Customer Main Key and can wrap and unwrap the one key it
 * ever protects, an environment's EK. Everything else in the hierarchy is wrapped by keystrata
 * itself, so a provider sees one call per environment per cache TTL.
 */

export interface WrapResult {
  readonly ciphertext: Buffer;
  /** The CMK version that wrapped the key, recorded beside it so old versions keep decrypting. */
  readonly keyVersion: string;
}

export interface CmkProvider {
  /** Registry name, e.g. "platform". */
  readonly name: string;
  /** Wrap `key` (32 bytes) bound to `aad`. Does not take ownership of `key`. */
  wrap(key: Buffer, aad: Buffer): Promise<WrapResult>;
  /**
   * Unwrap a key wrapped by `wrap` with the same `aad`. The caller owns (and must zero) the result.
   * Throws a KeystrataError: decryption_failed if the ciphertext or AAD does not match,
   * key_unavailable if the CMK cannot be reached now.
   */
  unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null): Promise<Buffer>;
  /** Release connections and zero any key material held. */
  close(): Promise<void>;
}

/** Builds providers of one kind from a stored CMK config, validating the config itself. */
export interface CmkProviderFactory {
  readonly name: string;
  /** Validate and open. `cmkId` and `environmentId` identify the CMK the config belongs to. */
  open(config: Readonly<Record<string, unknown>>, identity: { readonly cmkId: string; readonly environmentId: string }): CmkProvider;
}
