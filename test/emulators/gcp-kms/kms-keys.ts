import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The key store behind the Cloud KMS emulator: symmetric ENCRYPT_DECRYPT CryptoKeys with
 * CryptoKeyVersions, following https://cloud.google.com/kms/docs/key-states — only ENABLED
 * versions encrypt or decrypt; the primary version encrypts; the ciphertext records the version
 * that made it, so decrypt picks it (rotation keeps old ciphertexts readable); DESTROY_SCHEDULED
 * can be restored (to DISABLED); DESTROYED is final and the material is gone.
 *
 * Ciphertext layout (opaque to clients, as Google's is): version marker (16 random bytes) ‖ IV (12)
 * ‖ GCM tag (16) ‖ AES-256-GCM(plaintext, AAD = additionalAuthenticatedData).
 */

export type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'DESTROYED';

/** google.cloud.kms.v1 enum numbers, for `$alt=json;enum-encoding=int` (what the Node client asks for). */
const STATE_NUMBER: Record<VersionState, number> = { ENABLED: 1, DISABLED: 2, DESTROYED: 3, DESTROY_SCHEDULED: 4 };
const ENCRYPT_DECRYPT = 1;
const SOFTWARE = 1;
const GOOGLE_SYMMETRIC_ENCRYPTION = 1;

/** Cloud KMS's default time between "destroy" and the material being gone. */
export const DESTROY_SCHEDULED_SECONDS = 30 * 24 * 3600;
const ROTATION_PERIOD_SECONDS = 90 * 24 * 3600;

interface Version {
  readonly id: string;
  readonly name: string;
  readonly marker: Buffer;
  readonly material: Buffer;
  state: VersionState;
  readonly createTime: Date;
  destroyTime: Date | null;
  destroyEventTime: Date | null;
}

interface CryptoKey {
  readonly name: string;
  readonly versions: Map<string, Version>;
  primaryId: string;
  nextId: number;
  readonly createTime: Date;
  nextRotationTime: Date;
}

/** A Google API error: HTTP status, canonical status name, message, optional details. */
export class KmsError extends Error {
  constructor(
    readonly http: number,
    readonly status: string,
    message: string,
    readonly details: readonly Record<string, unknown>[] = [],
  ) {
    super(message);
  }
}

const MARKER = 16;
const IV = 12;
const TAG = 16;

function notEnabled(version: Version): KmsError {
  const details = version.state === 'DISABLED' ? [{ '@type': 'type.googleapis.com/google.rpc.PreconditionFailure', violations: [{ type: 'KEY_DISABLED', subject: version.name, description: `${version.name} is not enabled` }] }] : [];
  return new KmsError(400, 'FAILED_PRECONDITION', `${version.name} is not enabled, current state is: ${version.state}.`, details);
}

const rfc3339 = (date: Date) => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');

export class KmsKeys {
  private readonly keys = new Map<string, CryptoKey>();

  /** Create a key with version 1 enabled and primary (what `gcloud kms keys create` does). */
  create(name: string): void {
    const now = new Date();
    const key: CryptoKey = { name, versions: new Map(), primaryId: '', nextId: 1, createTime: now, nextRotationTime: new Date(now.getTime() + ROTATION_PERIOD_SECONDS * 1000) };
    this.keys.set(name, key);
    this.rotate(name);
  }

  has(name: string): boolean {
    return this.keys.has(name);
  }

  /** A new version, made primary (automatic rotation). Returns its id. */
  rotate(name: string): string {
    const key = this.key(name);
    const id = String(key.nextId++);
    const version: Version = { id, name: `${name}/cryptoKeyVersions/${id}`, marker: randomBytes(MARKER), material: randomBytes(32), state: 'ENABLED', createTime: new Date(), destroyTime: null, destroyEventTime: null };
    key.versions.set(id, version);
    key.primaryId = id;
    key.nextRotationTime = new Date(Date.now() + ROTATION_PERIOD_SECONDS * 1000);
    return id;
  }

  /** Move every version of `name` in one of `from` to `to` (the console's per-key actions act on all versions). */
  transition(name: string, from: readonly VersionState[], to: VersionState): void {
    const now = new Date();
    for (const version of this.key(name).versions.values()) {
      if (!from.includes(version.state)) continue;
      version.state = to;
      if (to === 'DESTROY_SCHEDULED') version.destroyTime = new Date(now.getTime() + DESTROY_SCHEDULED_SECONDS * 1000);
      if (to === 'DISABLED') version.destroyTime = null;
      if (to === 'DESTROYED') {
        version.destroyTime ??= now;
        version.destroyEventTime = now;
        version.material.fill(0);
      }
    }
  }

  encrypt(name: string, plaintext: Buffer, aad: Buffer): { version: string; ciphertext: Buffer } {
    const key = this.key(name);
    const version = key.versions.get(key.primaryId);
    if (!version) throw new KmsError(400, 'FAILED_PRECONDITION', `${name} has no primary version.`);
    if (version.state !== 'ENABLED') throw notEnabled(version);
    const iv = randomBytes(IV);
    const cipher = createCipheriv('aes-256-gcm', version.material, iv).setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { version: version.name, ciphertext: Buffer.concat([version.marker, iv, cipher.getAuthTag(), body]) };
  }

  decrypt(name: string, ciphertext: Buffer, aad: Buffer): { plaintext: Buffer; usedPrimary: boolean } {
    const key = this.key(name);
    const wrongKey = new KmsError(400, 'INVALID_ARGUMENT', "Decryption failed: verify that 'name' refers to the correct CryptoKey.");
    if (ciphertext.length < MARKER + IV + TAG) throw wrongKey;
    const marker = ciphertext.subarray(0, MARKER);
    const version = [...key.versions.values()].find((v) => v.marker.equals(marker));
    if (!version) throw wrongKey;
    if (version.state !== 'ENABLED') throw notEnabled(version);
    try {
      const decipher = createDecipheriv('aes-256-gcm', version.material, ciphertext.subarray(MARKER, MARKER + IV)).setAAD(aad);
      decipher.setAuthTag(ciphertext.subarray(MARKER + IV, MARKER + IV + TAG));
      const plaintext = Buffer.concat([decipher.update(ciphertext.subarray(MARKER + IV + TAG)), decipher.final()]);
      return { plaintext, usedPrimary: version.id === key.primaryId };
    } catch {
      throw wrongKey;
    }
  }

  /** The CryptoKey resource as `GET /v1/{name}` returns it. */
  resource(name: string, enumsAsInt: boolean): Record<string, unknown> {
    const key = this.key(name);
    const enumValue = (text: string, number: number) => (enumsAsInt ? number : text);
    const primary = key.versions.get(key.primaryId);
    return {
      name: key.name,
      ...(primary && {
        primary: {
          name: primary.name,
          state: enumValue(primary.state, STATE_NUMBER[primary.state]),
          protectionLevel: enumValue('SOFTWARE', SOFTWARE),
          algorithm: enumValue('GOOGLE_SYMMETRIC_ENCRYPTION', GOOGLE_SYMMETRIC_ENCRYPTION),
          createTime: rfc3339(primary.createTime),
          generateTime: rfc3339(primary.createTime),
          ...(primary.destroyTime && { destroyTime: rfc3339(primary.destroyTime) }),
          ...(primary.destroyEventTime && { destroyEventTime: rfc3339(primary.destroyEventTime) }),
        },
      }),
      purpose: enumValue('ENCRYPT_DECRYPT', ENCRYPT_DECRYPT),
      createTime: rfc3339(key.createTime),
      nextRotationTime: rfc3339(key.nextRotationTime),
      rotationPeriod: `${ROTATION_PERIOD_SECONDS}s`,
      versionTemplate: { protectionLevel: enumValue('SOFTWARE', SOFTWARE), algorithm: enumValue('GOOGLE_SYMMETRIC_ENCRYPTION', GOOGLE_SYMMETRIC_ENCRYPTION) },
      destroyScheduledDuration: `${DESTROY_SCHEDULED_SECONDS}s`,
    };
  }

  private key(name: string): CryptoKey {
    const key = this.keys.get(name);
    if (!key) throw new KmsError(404, 'NOT_FOUND', `${name} not found.`);
    return key;
  }
}
