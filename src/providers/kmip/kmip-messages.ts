import { ResultStatus, Tag, reasonName } from './kmip-enums.js';
import { decodeTtlv, encodeTtlv, enumeration, integer, optionalChild, requiredChild, structure, type Ttlv, TtlvError } from './ttlv.js';

/**
 * KMIP request and response messages with one batch item each (KMIP 1.4 spec §7). keystrata sends
 * one operation per round trip, so batching, asynchronous answers and message extensions are not
 * modelled; an answer carrying more than one batch item is refused.
 *
 * The header always says protocol 1.4: servers key their parsing on it, and PyKMIP refuses Encrypt
 * under 1.0 and only returns the GCM tag (Authenticated Encryption Tag, a 1.4 field) under 1.4.
 */

export const PROTOCOL_VERSION = { major: 1, minor: 4 } as const;

/** Largest response accepted (KMIP messages for our operations are a few hundred bytes). */
export const MAX_RESPONSE_BYTES = 1 << 20;

export function encodeRequest(operation: number, payload: readonly Ttlv[]): Buffer {
  return encodeTtlv(
    structure(Tag.RequestMessage, [
      structure(Tag.RequestHeader, [
        structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, PROTOCOL_VERSION.major), integer(Tag.ProtocolVersionMinor, PROTOCOL_VERSION.minor)]),
        integer(Tag.BatchCount, 1),
      ]),
      structure(Tag.BatchItem, [enumeration(Tag.Operation, operation), structure(Tag.RequestPayload, payload)]),
    ]),
  );
}

/** A failed operation, as the server reported it. Its message is the server's Result Message. */
export class KmipResultError extends Error {
  constructor(
    readonly operation: number,
    readonly status: number,
    readonly reason: number | undefined,
    readonly resultMessage: string | undefined,
  ) {
    super(`KMIP ${reasonName(reason)}${resultMessage ? `: ${resultMessage}` : ''}`);
    this.name = 'KmipResultError';
  }
}

/** A message the server sent that is not a well-formed KMIP answer to our request. */
export class KmipProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KmipProtocolError';
  }
}

/** Total size of a response message from its first 8 bytes (the TTLV header), checked for sanity. */
export function responseLength(header: Buffer): number {
  if (header.readUIntBE(0, 3) !== Tag.ResponseMessage || header.readUInt8(3) !== 0x01) {
    throw new KmipProtocolError('the server did not answer with a KMIP Response Message');
  }
  const length = 8 + header.readUInt32BE(4);
  if (length > MAX_RESPONSE_BYTES) throw new KmipProtocolError(`response of ${length} bytes is too large`);
  return length;
}

/**
 * The response payload of a successful operation. A failure becomes KmipResultError; anything
 * malformed (or an answer to another operation) becomes KmipProtocolError.
 */
export function decodeResponse(frame: Buffer, operation: number): Ttlv {
  let message: Ttlv;
  try {
    message = decodeTtlv(frame);
  } catch (error) {
    throw new KmipProtocolError(`malformed KMIP response (${error instanceof Error ? error.message : 'undecodable'})`, { cause: error });
  }
  try {
    if (message.tag !== Tag.ResponseMessage) throw new TtlvError('not a Response Message');
    requiredChild(message, Tag.ResponseHeader, 'structure');
    const items = message.type === 'structure' ? message.value.filter((item) => item.tag === Tag.BatchItem) : [];
    if (items.length !== 1) throw new TtlvError(`${items.length} batch items`);
    const item = items[0]!;
    const status = requiredChild(item, Tag.ResultStatus, 'enumeration').value;
    // Errors found before the server parsed our request (bad certificate, unparsable message)
    // come back without an Operation; a present one must be ours.
    const answered = optionalChild(item, Tag.Operation, 'enumeration')?.value;
    if (status !== ResultStatus.Success) {
      const reason = optionalChild(item, Tag.ResultReason, 'enumeration')?.value;
      const text = optionalChild(item, Tag.ResultMessage, 'textString')?.value;
      throw new KmipResultError(operation, status, reason, text === undefined ? undefined : sanitize(text));
    }
    if (answered !== operation) throw new TtlvError(`answer to operation ${answered ?? 'none'} instead of ${operation}`);
    return optionalChild(item, Tag.ResponsePayload, 'structure') ?? structure(Tag.ResponsePayload, []);
  } catch (error) {
    if (error instanceof TtlvError) throw new KmipProtocolError(`unexpected KMIP response: ${error.message}`, { cause: error });
    throw error;
  }
}

/** A server's Result Message goes into operator-facing errors: printable and bounded. */
function sanitize(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}
