import {
  CKA_CLASS,
  CKA_DECRYPT,
  CKA_ENCRYPT,
  CKA_ID,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKF_SERIAL_SESSION,
  CKK_AES,
  CKM_AES_GCM,
  CKO_SECRET_KEY,
  CKU_USER,
  PKCS11JS_PARAMS_AES_GCM,
} from './cryptoki-constants.js';
import { CryptokiError, type CryptokiHost } from './cryptoki-host.js';

/**
 * The few PKCS#11 operations the provider needs, typed, over a host's untyped calls. Handles are
 * pkcs11js's: opaque Buffers.
 */

export type Handle = Buffer;

/** A secret key object under the configured label. */
export interface KeyObject {
  readonly handle: Handle;
  /** CKA_ID, which is the key version keystrata records. */
  readonly id: Buffer;
  readonly encrypt: boolean;
  readonly decrypt: boolean;
}

/** GCM: a 96-bit IV and a 128-bit tag, the sizes NIST SP 800-38D recommends. */
export const GCM_IV_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;

function buffer(value: unknown, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  throw new CryptokiError('', `unexpected ${what} from the PKCS#11 module`);
}

function buffers(value: unknown, what: string): Buffer[] {
  if (Array.isArray(value)) return value.map((item) => buffer(item, what));
  throw new CryptokiError('', `unexpected ${what} from the PKCS#11 module`);
}

/** Token labels are fixed 32-byte fields padded with blanks (some modules pad with NULs). */
function trimLabel(label: string): string {
  return label.replace(/[\s\0]+$/, '');
}

/** The slot holding the token labelled `label`, or null. The first match wins (labels need not be unique). */
export async function slotOfToken(host: CryptokiHost, label: string): Promise<Handle | null> {
  for (const slot of buffers(await host.call('C_GetSlotList', true), 'slot list')) {
    const info = await host.call('C_GetTokenInfo', slot);
    const tokenLabel = (info as { label?: unknown } | null)?.label;
    if (typeof tokenLabel === 'string' && trimLabel(tokenLabel) === label) return slot;
  }
  return null;
}

/** A read-only session: wrapping and unwrapping never change the token. */
export async function openSession(host: CryptokiHost, slot: Handle): Promise<Handle> {
  return buffer(await host.call('C_OpenSession', slot, CKF_SERIAL_SESSION), 'session handle');
}

export async function closeSession(host: CryptokiHost, session: Handle): Promise<void> {
  await host.call('C_CloseSession', session);
}

export async function login(host: CryptokiHost, session: Handle, pin: string): Promise<void> {
  await host.call('C_Login', session, CKU_USER, pin);
}

export async function logout(host: CryptokiHost, session: Handle): Promise<void> {
  await host.call('C_Logout', session);
}

async function findObjects(host: CryptokiHost, session: Handle, template: readonly { type: number; value: unknown }[]): Promise<Handle[]> {
  await host.call('C_FindObjectsInit', session, template);
  try {
    const found: Handle[] = [];
    for (;;) {
      const batch = buffers(await host.call('C_FindObjects', session, 64), 'object list');
      found.push(...batch);
      if (batch.length < 64) return found;
    }
  } finally {
    // A failure here would hide the one that got us here; a broken session shows on the next call.
    await host.call('C_FindObjectsFinal', session).catch(() => undefined);
  }
}

/** The AES secret keys labelled `label` (with CKA_ID `id` only, if given), with their usage flags. */
export async function findAesKeys(host: CryptokiHost, session: Handle, label: string, id?: Buffer): Promise<KeyObject[]> {
  const template = [
    { type: CKA_CLASS, value: CKO_SECRET_KEY },
    { type: CKA_KEY_TYPE, value: CKK_AES },
    { type: CKA_LABEL, value: label },
    ...(id === undefined ? [] : [{ type: CKA_ID, value: id }]),
  ];
  const keys: KeyObject[] = [];
  for (const handle of await findObjects(host, session, template)) {
    const attributes = await host.call('C_GetAttributeValue', session, handle, [{ type: CKA_ID }, { type: CKA_ENCRYPT }, { type: CKA_DECRYPT }]);
    const values = new Map<number, Buffer>();
    for (const attribute of Array.isArray(attributes) ? (attributes as { type: number; value?: unknown }[]) : []) {
      if (Buffer.isBuffer(attribute.value)) values.set(attribute.type, attribute.value);
    }
    // CK_BBOOL is one byte; a module that does not say counts as "not allowed".
    const flag = (type: number) => (values.get(type)?.[0] ?? 0) !== 0;
    keys.push({ handle, id: values.get(CKA_ID) ?? Buffer.alloc(0), encrypt: flag(CKA_ENCRYPT), decrypt: flag(CKA_DECRYPT) });
  }
  return keys;
}

function gcm(iv: Buffer, aad: Buffer) {
  return { mechanism: CKM_AES_GCM, parameter: { type: PKCS11JS_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad, tagBits: GCM_TAG_LENGTH * 8 } };
}

/** AES-GCM in the token: ciphertext ‖ tag (PKCS#11 appends the tag). */
export async function encryptGcm(host: CryptokiHost, session: Handle, key: Handle, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
  await host.call('C_EncryptInit', session, gcm(iv, aad), key);
  return buffer(await host.call('C_Encrypt', session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_LENGTH)), 'ciphertext');
}

/** The plaintext of ciphertext ‖ tag; the caller owns (and zeroes) it. */
export async function decryptGcm(host: CryptokiHost, session: Handle, key: Handle, iv: Buffer, aad: Buffer, sealed: Buffer): Promise<Buffer> {
  await host.call('C_DecryptInit', session, gcm(iv, aad), key);
  return buffer(await host.call('C_Decrypt', session, sealed, Buffer.alloc(sealed.length)), 'plaintext');
}
