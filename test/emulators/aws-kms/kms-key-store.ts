import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';

/**
 * The keys of the AWS KMS emulator and the three operations keystrata uses (Encrypt, Decrypt,
 * DescribeKey), with the service's published semantics: key ids, key ARNs, alias names and alias
 * ARNs all resolve; the encryption context is authenticated (a different context on Decrypt is
 * InvalidCiphertextException); a Decrypt naming a KeyId other than the one that encrypted is
 * IncorrectKeyException; key states refuse use with DisabledException / KMSInvalidStateException;
 * a deleted key is NotFoundException.
 *
 * Ciphertext blobs are opaque in the real service; here they are
 * 0x01 ‖ key uuid (16) ‖ key material id (32) ‖ iv (12) ‖ AES-256-GCM(ciphertext ‖ tag), with the
 * header and the canonical encryption context as GCM associated data. Like the real blob it names
 * the key and the backing key material, so Decrypt works without a KeyId and after rotations.
 */

export const ACCOUNT_ID = '111122223333';

export type KeyState = 'Creating' | 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport' | 'Unavailable';
export type KeyOrigin = 'AWS_KMS' | 'EXTERNAL' | 'AWS_CLOUDHSM';

/** A service error: `__type` and message in the body, with the status the real service uses. */
export class KmsFault extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface EmulatedKey {
  readonly keyId: string;
  readonly arn: string;
  readonly creationDate: Date;
  readonly origin: KeyOrigin;
  readonly keySpec: 'SYMMETRIC_DEFAULT' | 'HMAC_256';
  keyState: KeyState;
  deletionDate?: Date;
  /** Imported key material only: when it expires (KMS then deletes it and the key is PendingImport). */
  validTo?: Date;
  /** Key material by id (64 hex). Old materials stay, so old ciphertexts keep decrypting. */
  readonly materials: Map<string, Buffer>;
  currentMaterialId: string | null;
  /** A copy of imported material, as the customer keeps it to re-import after expiry. */
  importedCopy?: { readonly id: string; readonly material: Buffer };
  /** A key-policy condition: encryption context entries every Encrypt/Decrypt must carry. */
  requiredContext?: Readonly<Record<string, string>>;
}

const HEADER_LENGTH = 1 + 16 + 32;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidOf(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function canonicalContext(context: Readonly<Record<string, string>>): Buffer {
  return Buffer.from(JSON.stringify(Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), 'utf8');
}

const epochSeconds = (date: Date): number => date.getTime() / 1000;

export class KmsKeyStore {
  private readonly keys = new Map<string, EmulatedKey>();
  private readonly aliases = new Map<string, string>();
  /** Operations each access key id is not allowed to call (its IAM policy lacks them). */
  readonly denied = new Map<string, Set<string>>();

  constructor(readonly region: string) {}

  createKey(options: { origin?: KeyOrigin; validTo?: Date; keySpec?: EmulatedKey['keySpec']; requiredContext?: Record<string, string> } = {}): EmulatedKey {
    const keyId = randomUUID();
    const materialId = randomBytes(32).toString('hex');
    const material = randomBytes(32);
    const key: EmulatedKey = {
      keyId,
      arn: `arn:aws:kms:${this.region}:${ACCOUNT_ID}:key/${keyId}`,
      creationDate: new Date(),
      origin: options.origin ?? 'AWS_KMS',
      keySpec: options.keySpec ?? 'SYMMETRIC_DEFAULT',
      keyState: 'Enabled',
      materials: new Map([[materialId, material]]),
      currentMaterialId: materialId,
      ...(options.validTo ? { validTo: options.validTo } : {}),
      ...(options.origin === 'EXTERNAL' ? { importedCopy: { id: materialId, material: Buffer.from(material) } } : {}),
      ...(options.requiredContext ? { requiredContext: options.requiredContext } : {}),
    };
    this.keys.set(keyId, key);
    return key;
  }

  key(keyId: string): EmulatedKey {
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`emulator: no key ${keyId}`);
    return key;
  }

  setAlias(name: string, keyId: string | null): void {
    if (keyId === null) this.aliases.delete(name);
    else this.aliases.set(name, keyId);
  }

  /** The key is gone for good (end of the deletion waiting period): its aliases go with it. */
  deleteKey(keyId: string): void {
    const key = this.key(keyId);
    for (const material of key.materials.values()) material.fill(0);
    this.keys.delete(keyId);
    for (const [alias, target] of this.aliases) if (target === keyId) this.aliases.delete(alias);
  }

  /** Automatic or on-demand rotation: new current material, old materials kept for Decrypt. */
  rotate(keyId: string): string {
    const key = this.key(keyId);
    const materialId = randomBytes(32).toString('hex');
    key.materials.set(materialId, randomBytes(32));
    key.currentMaterialId = materialId;
    return materialId;
  }

  /** Re-import the customer's copy of imported material (after expiry or deletion). */
  reimport(keyId: string, validTo?: Date): void {
    const key = this.key(keyId);
    if (!key.importedCopy) throw new Error('emulator: not a key with imported material');
    key.materials.set(key.importedCopy.id, Buffer.from(key.importedCopy.material));
    key.currentMaterialId = key.importedCopy.id;
    if (validTo) key.validTo = validTo;
    else delete key.validTo;
    key.keyState = 'Enabled';
  }

  /** KMS deletes imported material when it expires; the key then waits for a re-import. */
  private expire(key: EmulatedKey): void {
    if (key.validTo && key.validTo.getTime() <= Date.now() && key.currentMaterialId !== null) {
      for (const material of key.materials.values()) material.fill(0);
      key.materials.clear();
      key.currentMaterialId = null;
      if (key.keyState === 'Enabled' || key.keyState === 'Disabled') key.keyState = 'PendingImport';
    }
  }

  private resolve(keyIdInput: unknown): EmulatedKey {
    if (typeof keyIdInput !== 'string' || keyIdInput.length === 0) {
      throw new KmsFault('ValidationException', "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    }
    let keyId: string | undefined;
    const arn = /^arn:aws:kms:([^:]+):(\d{12}):(key|alias)\/(.+)$/.exec(keyIdInput);
    if (arn) {
      if (arn[1] !== this.region || arn[2] !== ACCOUNT_ID) throw new KmsFault('NotFoundException', `Key '${keyIdInput}' does not exist`);
      keyId = arn[3] === 'key' ? arn[4] : this.aliases.get(`alias/${arn[4]!}`);
    } else if (keyIdInput.startsWith('alias/')) {
      keyId = this.aliases.get(keyIdInput);
      if (keyId === undefined) throw new KmsFault('NotFoundException', `Alias arn:aws:kms:${this.region}:${ACCOUNT_ID}:${keyIdInput} is not found.`);
    } else {
      keyId = keyIdInput;
    }
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (!key) throw new KmsFault('NotFoundException', `Key '${keyIdInput.startsWith('arn:') ? keyIdInput : `arn:aws:kms:${this.region}:${ACCOUNT_ID}:key/${keyIdInput}`}' does not exist`);
    this.expire(key);
    return key;
  }

  private authorize(accessKeyId: string, operation: string, key: EmulatedKey, context?: Readonly<Record<string, string>>): void {
    const policyAllows = !this.denied.get(accessKeyId)?.has(operation);
    const conditionHolds = !key.requiredContext || !context || Object.entries(key.requiredContext).every(([k, v]) => context[k] === v);
    if (!policyAllows || !conditionHolds) {
      throw new KmsFault(
        'AccessDeniedException',
        `User: arn:aws:iam::${ACCOUNT_ID}:user/keystrata is not authorized to perform: kms:${operation} on resource: ${key.arn} because no identity-based policy allows the kms:${operation} action`,
      );
    }
  }

  /** Disabled, pending deletion, pending import and unavailable keys refuse cryptographic use. */
  private usable(key: EmulatedKey): void {
    if (key.keyState === 'Disabled') throw new KmsFault('DisabledException', `${key.arn} is disabled.`);
    const stateWords: Partial<Record<KeyState, string>> = { PendingDeletion: 'pending deletion', PendingImport: 'pending import', Unavailable: 'unavailable', Creating: 'creating' };
    const words = stateWords[key.keyState];
    if (words) throw new KmsFault('KMSInvalidStateException', `${key.arn} is ${words}.`);
    if (key.keySpec !== 'SYMMETRIC_DEFAULT') throw new KmsFault('InvalidKeyUsageException', `${key.arn} key usage is GENERATE_VERIFY_MAC which is not valid for this operation.`);
  }

  private context(value: unknown): Record<string, string> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Object.values(value).some((v) => typeof v !== 'string')) {
      throw new KmsFault('ValidationException', 'EncryptionContext must be a map of strings to strings');
    }
    return value as Record<string, string>;
  }

  private algorithm(value: unknown): void {
    if (value !== undefined && value !== 'SYMMETRIC_DEFAULT') throw new KmsFault('InvalidKeyUsageException', `Algorithm ${String(value)} is not supported by this key.`);
  }

  encrypt(accessKeyId: string, body: Record<string, unknown>): Record<string, unknown> {
    const key = this.resolve(body.KeyId);
    const context = this.context(body.EncryptionContext);
    this.authorize(accessKeyId, 'Encrypt', key, context);
    this.usable(key);
    this.algorithm(body.EncryptionAlgorithm);
    if (typeof body.Plaintext !== 'string') throw new KmsFault('ValidationException', "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null");
    const plaintext = Buffer.from(body.Plaintext, 'base64');
    if (plaintext.length < 1 || plaintext.length > 4096) throw new KmsFault('ValidationException', "Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096");
    const materialId = key.currentMaterialId!;
    const header = Buffer.concat([Buffer.from([1]), uuidBytes(key.keyId), Buffer.from(materialId, 'hex')]);
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', key.materials.get(materialId)!, iv);
    cipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
    const blob = Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    plaintext.fill(0);
    return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  decrypt(accessKeyId: string, body: Record<string, unknown>): Record<string, unknown> {
    const blob = typeof body.CiphertextBlob === 'string' ? Buffer.from(body.CiphertextBlob, 'base64') : Buffer.alloc(0);
    if (blob.length < HEADER_LENGTH + IV_LENGTH + TAG_LENGTH + 1 || blob[0] !== 1) throw new KmsFault('InvalidCiphertextException', '');
    const blobKeyId = uuidOf(blob.subarray(1, 17));
    const key = body.KeyId === undefined ? this.resolve(blobKeyId) : this.resolve(body.KeyId);
    if (key.keyId !== blobKeyId) throw new KmsFault('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    const context = this.context(body.EncryptionContext);
    this.authorize(accessKeyId, 'Decrypt', key, context);
    this.usable(key);
    this.algorithm(body.EncryptionAlgorithm);
    const materialId = blob.subarray(17, HEADER_LENGTH).toString('hex');
    const material = key.materials.get(materialId);
    if (!material) throw new KmsFault('KMSInvalidStateException', `${key.arn} is pending import.`);
    const decipher = createDecipheriv('aes-256-gcm', material, blob.subarray(HEADER_LENGTH, HEADER_LENGTH + IV_LENGTH));
    decipher.setAAD(Buffer.concat([blob.subarray(0, HEADER_LENGTH), canonicalContext(context)]));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_LENGTH));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(blob.subarray(HEADER_LENGTH + IV_LENGTH, blob.length - TAG_LENGTH)), decipher.final()]);
    } catch {
      // The real service says nothing more about why (wrong context, tampered blob).
      throw new KmsFault('InvalidCiphertextException', '');
    }
    const answer = { KeyId: key.arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', KeyMaterialId: materialId };
    plaintext.fill(0);
    return answer;
  }

  describeKey(accessKeyId: string, body: Record<string, unknown>): Record<string, unknown> {
    const key = this.resolve(body.KeyId);
    this.authorize(accessKeyId, 'DescribeKey', key);
    const imported = key.origin === 'EXTERNAL';
    return {
      KeyMetadata: {
        AWSAccountId: ACCOUNT_ID,
        KeyId: key.keyId,
        Arn: key.arn,
        CreationDate: epochSeconds(key.creationDate),
        Enabled: key.keyState === 'Enabled',
        Description: '',
        KeyUsage: key.keySpec === 'SYMMETRIC_DEFAULT' ? 'ENCRYPT_DECRYPT' : 'GENERATE_VERIFY_MAC',
        KeyState: key.keyState,
        ...(key.deletionDate ? { DeletionDate: epochSeconds(key.deletionDate), PendingDeletionWindowInDays: 7 } : {}),
        ...(key.validTo ? { ValidTo: epochSeconds(key.validTo) } : {}),
        ...(imported ? { ExpirationModel: key.validTo ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE' } : {}),
        Origin: key.origin,
        ...(key.origin === 'AWS_CLOUDHSM' ? { CustomKeyStoreId: 'cks-1234567890abcdef0', CloudHsmClusterId: 'cluster-1a23b4cdefg' } : {}),
        KeyManager: 'CUSTOMER',
        CustomerMasterKeySpec: key.keySpec,
        KeySpec: key.keySpec,
        ...(key.keySpec === 'SYMMETRIC_DEFAULT' ? { EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] } : { MacAlgorithms: ['HMAC_SHA_256'] }),
        MultiRegion: false,
        // Only keys whose material KMS can rotate (AWS_KMS, EXTERNAL) name their current material.
        ...(key.origin !== 'AWS_CLOUDHSM' && key.currentMaterialId !== null ? { CurrentKeyMaterialId: key.currentMaterialId } : {}),
      },
    };
  }
}
