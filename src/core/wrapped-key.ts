import { open, seal } from './aead.js';
import { KEY_LENGTH, idToBytes } from './bytes.js';

/**
 * How one keystrata key is wrapped by its parent (EK → hourly/connection/log/context keys,
 * hourly → job keys, context → object data keys): AES-256-GCM, stored as
 *
 *   version(1)=0x01 ‖ nonce(12) ‖ encrypted key(32) ‖ tag(16)      = 61 bytes
 *
 * with AAD = "ks-wrap\0" ‖ version ‖ environment id ‖ key id ‖ kind ‖ parent id. Binding the child's
 * identity and its parent means a wrapped key copied onto another row (another job, another
 * environment, another parent) no longer unwraps: a database writer cannot swap keys around.
 */

export const WRAPPED_KEY_VERSION = 1;
export const WRAPPED_KEY_LENGTH = 1 + 12 + KEY_LENGTH + 16;
const LABEL = Buffer.from('ks-wrap\0', 'latin1');

export interface WrapBinding {
  readonly environmentId: string;
  readonly keyId: string;
  /** The key's kind, e.g. "hourly", "job", "object". */
  readonly kind: string;
  readonly parentId: string;
}

function wrapAad(binding: WrapBinding): Buffer {
  return Buffer.concat([
    LABEL,
    Buffer.of(WRAPPED_KEY_VERSION),
    idToBytes(binding.environmentId),
    idToBytes(binding.keyId),
    Buffer.from(binding.kind + '\0', 'utf8'),
    idToBytes(binding.parentId),
  ]);
}

export function wrapKey(parentKey: Uint8Array, childKey: Uint8Array, binding: WrapBinding): Buffer {
  if (childKey.length !== KEY_LENGTH) throw new RangeError('keystrata keys are 32 bytes');
  return Buffer.concat([Buffer.of(WRAPPED_KEY_VERSION), seal(parentKey, childKey, wrapAad(binding))]);
}

/** The child key, or undefined if the wrapped bytes are malformed, tampered or bound elsewhere. */
export function unwrapKey(parentKey: Uint8Array, wrapped: Uint8Array, binding: WrapBinding): Buffer | undefined {
  if (wrapped.length !== WRAPPED_KEY_LENGTH || wrapped[0] !== WRAPPED_KEY_VERSION) return undefined;
  return open(parentKey, wrapped.subarray(1), wrapAad(binding));
}

const EK_LABEL = Buffer.from('ks-ek\0', 'latin1');

/**
 * AAD for wrapping an environment key with its CMK (by whichever provider holds the CMK): binds
 * the EK to its environment, its own id and the CMK, so an EK row cannot be replayed elsewhere.
 */
export function ekWrapAad(binding: { readonly environmentId: string; readonly ekId: string; readonly cmkId: string }): Buffer {
  return Buffer.concat([EK_LABEL, idToBytes(binding.environmentId), idToBytes(binding.ekId), idToBytes(binding.cmkId)]);
}
