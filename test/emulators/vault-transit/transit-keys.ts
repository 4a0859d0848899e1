import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Transit keys as Vault's keysutil.Policy keeps them (test code): numbered versions, AES-256-GCM
 * with a 96-bit random nonce, ciphertext "vault:v<N>:" + base64(nonce ‖ ct ‖ tag), associated
 * data for AEAD types, min_decryption_version / min_encryption_version / min_available_version
 * (trim). Error texts are Vault's own (sdk/helper/keysutil/policy.go, builtin/logical/transit).
 */

/** A user error: Vault answers 400 `{"errors":[message]}`. */
export class TransitUserError extends Error {}

const NONCE = 12;
const TAG = 16;
/** Vault's keysutil.ErrTooOld. */
export const ERR_TOO_OLD = 'ciphertext or signature version is disallowed by policy (too old)';
const AEAD_TYPES = new Set(['aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305', 'aes128-gcm96']);
export const KEY_TYPES = new Set([...AEAD_TYPES, 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519', 'ecdsa-p256', 'hmac']);

/** Go's base64.StdEncoding.DecodeString: padded, standard alphabet, nothing else. */
export function strictBase64(text: string, what: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw new TransitUserError(what);
  return Buffer.from(text, 'base64');
}

export class TransitKey {
  /** version → [material, creation time (unix seconds)]. */
  private readonly versions = new Map<number, { readonly material: Buffer; readonly created: number }>();
  latestVersion = 0;
  minDecryptionVersion = 1;
  minEncryptionVersion = 0;
  minAvailableVersion = 0;
  deletionAllowed = false;

  constructor(
    readonly name: string,
    readonly type: string,
    readonly derived = false,
  ) {
    this.rotate();
  }

  get aead(): boolean {
    return AEAD_TYPES.has(this.type);
  }

  rotate(): number {
    this.latestVersion += 1;
    this.versions.set(this.latestVersion, { material: randomBytes(32), created: Math.floor(Date.now() / 1000) });
    return this.latestVersion;
  }

  /** POST keys/:name/config. Vault's checks, in its words. */
  configure(body: Readonly<Record<string, unknown>>): void {
    const minDecryption = body.min_decryption_version;
    if (typeof minDecryption === 'number') {
      if (minDecryption > this.latestVersion) throw new TransitUserError(`cannot set min decryption version of ${minDecryption}, latest key version is ${this.latestVersion}`);
      if (minDecryption > 0 && minDecryption < this.minAvailableVersion) throw new TransitUserError('min decryption version should not be less than min available version');
      this.minDecryptionVersion = Math.max(1, minDecryption);
    }
    const minEncryption = body.min_encryption_version;
    if (typeof minEncryption === 'number') {
      if (minEncryption > this.latestVersion) throw new TransitUserError(`cannot set min encryption version of ${minEncryption}, latest key version is ${this.latestVersion}`);
      this.minEncryptionVersion = minEncryption;
    }
    if (typeof body.deletion_allowed === 'boolean') this.deletionAllowed = body.deletion_allowed;
  }

  /** POST keys/:name/trim: versions below min_available_version are deleted for good. */
  trim(minAvailable: number): void {
    if (minAvailable < 1) throw new TransitUserError('minimum available version should be positive');
    if (minAvailable > this.minDecryptionVersion) throw new TransitUserError('minimum available version cannot be greater than minimum decryption version');
    for (const version of [...this.versions.keys()]) {
      if (version < minAvailable) {
        this.versions.get(version)!.material.fill(0);
        this.versions.delete(version);
      }
    }
    this.minAvailableVersion = minAvailable;
  }

  encrypt(plaintext: Buffer, associatedData: Buffer | undefined, keyVersion: number): { ciphertext: string; version: number } {
    if (associatedData !== undefined && !this.aead) throw new TransitUserError(`'[0].associated_data' provided for non-AEAD cipher suite ${this.type}`);
    if (this.derived) {
      throw new TransitUserError("missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key");
    }
    if (!this.aead) throw new TransitUserError(`the emulator does not implement ${this.type} encryption`);
    let version = keyVersion === 0 ? this.latestVersion : keyVersion;
    if (keyVersion !== 0 && keyVersion < this.minEncryptionVersion) throw new TransitUserError('requested version for encryption is less than the minimum encryption key version');
    if (version > this.latestVersion) throw new TransitUserError('requested version for encryption is higher than the latest key version');
    if (version < 1) version = this.latestVersion;
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.versions.get(version)!.material, nonce);
    if (associatedData !== undefined) cipher.setAAD(associatedData);
    const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: `vault:v${version}:${body.toString('base64')}`, version };
  }

  /** keysutil.Policy.DecryptWithFactory, check for check. */
  decrypt(value: string, associatedData: Buffer | undefined): Buffer {
    if (associatedData !== undefined && !this.aead) throw new TransitUserError(`'[0].associated_data' provided for non-AEAD cipher suite ${this.type}`);
    if (!value.startsWith('vault:v')) throw new TransitUserError('invalid ciphertext: no prefix');
    const rest = value.slice('vault:v'.length);
    const colon = rest.indexOf(':');
    if (colon < 0) throw new TransitUserError('invalid ciphertext: wrong number of fields');
    const versionText = rest.slice(0, colon);
    if (!/^[+-]?\d+$/.test(versionText)) throw new TransitUserError('invalid ciphertext: version number could not be decoded');
    let version = Number(versionText);
    if (version === 0) version = 1;
    if (version > this.latestVersion) throw new TransitUserError('invalid ciphertext: version is too new');
    if (this.minDecryptionVersion > 0 && version < this.minDecryptionVersion) throw new TransitUserError(ERR_TOO_OLD);
    const decoded = strictBase64(rest.slice(colon + 1), 'invalid ciphertext: could not decode base64');
    if (this.derived) throw new TransitUserError("missing 'context' for key derivation");
    if (decoded.length < NONCE + TAG) throw new TransitUserError('invalid ciphertext length');
    const entry = this.versions.get(version);
    if (!entry) throw new TransitUserError(ERR_TOO_OLD);
    const decipher = createDecipheriv('aes-256-gcm', entry.material, decoded.subarray(0, NONCE));
    decipher.setAuthTag(decoded.subarray(decoded.length - TAG));
    if (associatedData !== undefined) decipher.setAAD(associatedData);
    try {
      return Buffer.concat([decipher.update(decoded.subarray(NONCE, decoded.length - TAG)), decipher.final()]);
    } catch {
      // Go's crypto/cipher error text, passed through by Vault.
      throw new TransitUserError('cipher: message authentication failed');
    }
  }

  /** GET keys/:name `data`, as Vault answers it for a symmetric key (no key material). */
  read(): Record<string, unknown> {
    const keys: Record<string, number> = {};
    for (const [version, { created }] of this.versions) keys[String(version)] = created;
    return {
      allow_plaintext_backup: false,
      auto_rotate_period: 0,
      deletion_allowed: this.deletionAllowed,
      derived: this.derived,
      exportable: false,
      imported_key: false,
      keys,
      latest_version: this.latestVersion,
      min_available_version: this.minAvailableVersion,
      min_decryption_version: this.minDecryptionVersion,
      min_encryption_version: this.minEncryptionVersion,
      name: this.name,
      supports_decryption: this.aead || this.type.startsWith('rsa'),
      supports_derivation: this.aead,
      supports_encryption: this.aead || this.type.startsWith('rsa'),
      supports_signing: !this.aead && !this.type.startsWith('hmac'),
      type: this.type,
    };
  }

  destroy(): void {
    for (const { material } of this.versions.values()) material.fill(0);
    this.versions.clear();
  }
}
