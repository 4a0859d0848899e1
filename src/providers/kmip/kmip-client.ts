import { KmipConnection, type KmipConnectionOptions, type KmipEndpoint } from './kmip-connection.js';
import { BlockCipherMode, CryptographicAlgorithm, Operation, Tag } from './kmip-enums.js';
import { KmipProtocolError, decodeResponse, encodeRequest } from './kmip-messages.js';
import { byteString, childrenOf, enumeration, integer, optionalChild, requiredChild, structure, textString, type Ttlv } from './ttlv.js';

/**
 * The KMIP operations keystrata performs with a customer's key: Encrypt and Decrypt with AES-GCM
 * (the AAD bound natively by the server) and Get Attributes for the health probe. `call` is the
 * generic round trip, which the test fixture also uses for the administrative operations
 * (Create, Activate, Revoke, Destroy) that keystrata itself never sends.
 */

/** GCM tag length in bytes (KMIP's Tag Length is in bytes, §3.6). */
export const GCM_TAG_BYTES = 16;

const gcmParameters = (): Ttlv =>
  structure(Tag.CryptographicParameters, [
    enumeration(Tag.BlockCipherMode, BlockCipherMode.GCM),
    enumeration(Tag.CryptographicAlgorithm, CryptographicAlgorithm.AES),
    integer(Tag.TagLength, GCM_TAG_BYTES),
  ]);

export interface GcmEncryptResult {
  readonly uniqueIdentifier: string;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

export interface KmipAttribute {
  readonly name: string;
  readonly value: Ttlv;
}

export class KmipClient {
  private readonly connection: KmipConnection;

  constructor(endpoint: KmipEndpoint, options?: KmipConnectionOptions) {
    this.connection = new KmipConnection(endpoint, options);
  }

  /**
   * One operation, one round trip: its response payload, or KmipResultError / KmipProtocolError /
   * KmipTransportError. The request and response messages are zeroed once used (they may carry key
   * material); byte strings in the returned payload are copies the caller owns.
   */
  async call(operation: number, payload: readonly Ttlv[], signal?: AbortSignal): Promise<Ttlv> {
    const request = encodeRequest(operation, payload);
    try {
      const frame = await this.connection.roundTrip(request, signal);
      try {
        return decodeResponse(frame, operation);
      } finally {
        frame.fill(0);
      }
    } finally {
      request.fill(0);
    }
  }

  /** AES-GCM Encrypt under `keyId` with our IV; the server must return ciphertext and a full tag. */
  async encrypt(keyId: string, data: Buffer, iv: Buffer, aad: Buffer, signal?: AbortSignal): Promise<GcmEncryptResult> {
    const payload = await this.call(
      Operation.Encrypt,
      [
        textString(Tag.UniqueIdentifier, keyId),
        gcmParameters(),
        byteString(Tag.Data, data),
        byteString(Tag.IvCounterNonce, iv),
        byteString(Tag.AuthenticatedEncryptionAdditionalData, aad),
      ],
      signal,
    );
    const ciphertext = requiredChild(payload, Tag.Data, 'byteString').value;
    const tag = optionalChild(payload, Tag.AuthenticatedEncryptionTag, 'byteString')?.value;
    const returnedIv = optionalChild(payload, Tag.IvCounterNonce, 'byteString')?.value;
    // A server that ignored our IV, dropped the tag (a pre-1.4 answer) or shortened it would make
    // blobs that never decrypt: refuse them now rather than store them.
    if (tag === undefined || tag.length !== GCM_TAG_BYTES) throw new KmipProtocolError('the KMIP server returned no full GCM tag (does it speak KMIP 1.4?)');
    if (returnedIv !== undefined && !returnedIv.equals(iv)) throw new KmipProtocolError('the KMIP server used another IV than the one sent');
    if (ciphertext.length !== data.length) throw new KmipProtocolError('the KMIP server returned a ciphertext of the wrong length');
    const uniqueIdentifier = optionalChild(payload, Tag.UniqueIdentifier, 'textString')?.value ?? keyId;
    return { uniqueIdentifier, ciphertext, tag };
  }

  /** AES-GCM Decrypt under `keyId`; the caller owns (and zeroes) the plaintext. */
  async decrypt(keyId: string, ciphertext: Buffer, iv: Buffer, tag: Buffer, aad: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const payload = await this.call(
      Operation.Decrypt,
      [
        textString(Tag.UniqueIdentifier, keyId),
        gcmParameters(),
        byteString(Tag.Data, ciphertext),
        byteString(Tag.IvCounterNonce, iv),
        byteString(Tag.AuthenticatedEncryptionAdditionalData, aad),
        byteString(Tag.AuthenticatedEncryptionTag, tag),
      ],
      signal,
    );
    return requiredChild(payload, Tag.Data, 'byteString').value;
  }

  /** The named attributes the server has for `keyId` (absent ones are simply not listed). */
  async getAttributes(keyId: string, names: readonly string[], signal?: AbortSignal): Promise<KmipAttribute[]> {
    const payload = await this.call(Operation.GetAttributes, [textString(Tag.UniqueIdentifier, keyId), ...names.map((name) => textString(Tag.AttributeName, name))], signal);
    return childrenOf(payload, Tag.Attribute, 'structure').map((attribute) => {
      const value = attribute.value.find((item) => item.tag === Tag.AttributeValue);
      if (value === undefined) throw new KmipProtocolError('an attribute without a value');
      return { name: requiredChild(attribute, Tag.AttributeName, 'textString').value, value };
    });
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
