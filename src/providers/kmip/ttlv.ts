/**
 * KMIP's TTLV encoding (KMIP 1.4 spec §9.1): every item is a 3-byte tag, a 1-byte type, a 4-byte
 * big-endian length and a value padded with zeros to a multiple of 8 bytes. A Structure's value is
 * the concatenation of its items. No KMIP client exists on npm; this codec is the part of one that
 * keystrata needs, checked against the spec's own encodings (test/providers/kmip-ttlv.test.ts).
 *
 * The decoder is strict: a length that runs past its parent, a fixed-size type with the wrong
 * length, a Boolean other than 0/1, text that is not UTF-8 or nesting deeper than MAX_DEPTH are all
 * TtlvError. A server's answer is untrusted input.
 */

export type Ttlv =
  | { readonly tag: number; readonly type: 'structure'; readonly value: readonly Ttlv[] }
  | { readonly tag: number; readonly type: 'integer'; readonly value: number }
  | { readonly tag: number; readonly type: 'longInteger'; readonly value: bigint }
  | { readonly tag: number; readonly type: 'bigInteger'; readonly value: bigint }
  | { readonly tag: number; readonly type: 'enumeration'; readonly value: number }
  | { readonly tag: number; readonly type: 'boolean'; readonly value: boolean }
  | { readonly tag: number; readonly type: 'textString'; readonly value: string }
  | { readonly tag: number; readonly type: 'byteString'; readonly value: Buffer }
  | { readonly tag: number; readonly type: 'dateTime'; readonly value: Date }
  /** Seconds. */
  | { readonly tag: number; readonly type: 'interval'; readonly value: number };

export type TtlvType = Ttlv['type'];

export class TtlvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TtlvError';
  }
}

const TYPE_CODES: Readonly<Record<TtlvType, number>> = {
  structure: 0x01,
  integer: 0x02,
  longInteger: 0x03,
  bigInteger: 0x04,
  enumeration: 0x05,
  boolean: 0x06,
  textString: 0x07,
  byteString: 0x08,
  dateTime: 0x09,
  interval: 0x0a,
};
const TYPES_BY_CODE = new Map<number, TtlvType>(Object.entries(TYPE_CODES).map(([name, code]) => [code, name as TtlvType]));

/** Value lengths the spec fixes; the other types carry their own. */
const FIXED_LENGTH: Partial<Record<TtlvType, number>> = { integer: 4, longInteger: 8, enumeration: 4, boolean: 8, dateTime: 8, interval: 4 };

const HEADER = 8;
const MAX_DEPTH = 16;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

const padded = (length: number): number => (length + 7) & ~7;

export const structure = (tag: number, value: readonly Ttlv[]): Ttlv => ({ tag, type: 'structure', value });
export const integer = (tag: number, value: number): Ttlv => ({ tag, type: 'integer', value });
export const longInteger = (tag: number, value: bigint): Ttlv => ({ tag, type: 'longInteger', value });
export const bigInteger = (tag: number, value: bigint): Ttlv => ({ tag, type: 'bigInteger', value });
export const enumeration = (tag: number, value: number): Ttlv => ({ tag, type: 'enumeration', value });
export const boolean = (tag: number, value: boolean): Ttlv => ({ tag, type: 'boolean', value });
export const textString = (tag: number, value: string): Ttlv => ({ tag, type: 'textString', value });
export const byteString = (tag: number, value: Buffer): Ttlv => ({ tag, type: 'byteString', value });
export const dateTime = (tag: number, value: Date): Ttlv => ({ tag, type: 'dateTime', value });
export const interval = (tag: number, value: number): Ttlv => ({ tag, type: 'interval', value });

/** Two's-complement big-endian bytes of `value`, sign-extended to a multiple of 8 bytes (§9.1.1.4). */
function bigIntegerBytes(value: bigint): Buffer {
  let length = 8;
  // Grow until the value fits as a signed number of `length` bytes.
  while (value >= 1n << BigInt(length * 8 - 1) || value < -(1n << BigInt(length * 8 - 1))) length += 8;
  const out = Buffer.alloc(length);
  let rest = BigInt.asUintN(length * 8, value);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** Unpadded value length of an item. */
function valueLength(item: Ttlv): number {
  switch (item.type) {
    case 'structure':
      return item.value.reduce((sum, child) => sum + HEADER + padded(valueLength(child)), 0);
    case 'bigInteger':
      return bigIntegerBytes(item.value).length;
    case 'textString':
      return Buffer.byteLength(item.value, 'utf8');
    case 'byteString':
      return item.value.length;
    default:
      return FIXED_LENGTH[item.type]!;
  }
}

/** Writes the value of `item` at `offset` (the buffer is zero-filled, so padding is already there). */
function writeValue(item: Ttlv, out: Buffer, offset: number): void {
  switch (item.type) {
    case 'structure': {
      let at = offset;
      for (const child of item.value) at = writeItem(child, out, at);
      return;
    }
    case 'integer':
      out.writeInt32BE(item.value, offset);
      return;
    case 'interval':
    case 'enumeration':
      out.writeUInt32BE(item.value, offset);
      return;
    case 'longInteger':
      out.writeBigInt64BE(item.value, offset);
      return;
    case 'bigInteger':
      bigIntegerBytes(item.value).copy(out, offset);
      return;
    case 'boolean':
      out.writeBigUInt64BE(item.value ? 1n : 0n, offset);
      return;
    case 'textString':
      out.write(item.value, offset, 'utf8');
      return;
    case 'byteString':
      item.value.copy(out, offset);
      return;
    case 'dateTime': {
      const ms = item.value.getTime();
      if (!Number.isFinite(ms)) throw new TtlvError('invalid Date-Time');
      out.writeBigInt64BE(BigInt(Math.floor(ms / 1000)), offset);
      return;
    }
  }
}

function writeItem(item: Ttlv, out: Buffer, offset: number): number {
  if (!Number.isInteger(item.tag) || item.tag < 0 || item.tag > 0xffffff) throw new TtlvError(`invalid tag ${item.tag}`);
  const length = valueLength(item);
  out.writeUIntBE(item.tag, offset, 3);
  out.writeUInt8(TYPE_CODES[item.type], offset + 3);
  out.writeUInt32BE(length, offset + 4);
  writeValue(item, out, offset + HEADER);
  return offset + HEADER + padded(length);
}

/**
 * The TTLV bytes of one item (and, for a Structure, everything in it), written into one buffer so
 * that key material in a Byte String is copied exactly once: the caller zeroes that buffer.
 */
export function encodeTtlv(item: Ttlv): Buffer {
  const out = Buffer.alloc(HEADER + padded(valueLength(item)));
  writeItem(item, out, 0);
  return out;
}

function readSigned(bytes: Buffer): bigint {
  let result = 0n;
  for (const byte of bytes) result = (result << 8n) | BigInt(byte);
  return BigInt.asIntN(bytes.length * 8, result);
}

function decodeValue(tag: number, type: TtlvType, bytes: Buffer, depth: number): Ttlv {
  switch (type) {
    case 'structure':
      return { tag, type, value: decodeItems(bytes, depth + 1) };
    case 'integer':
      return { tag, type, value: bytes.readInt32BE(0) };
    case 'interval':
      return { tag, type, value: bytes.readUInt32BE(0) };
    case 'enumeration':
      return { tag, type, value: bytes.readUInt32BE(0) };
    case 'longInteger':
      return { tag, type, value: bytes.readBigInt64BE(0) };
    case 'bigInteger':
      if (bytes.length === 0 || bytes.length % 8 !== 0) throw new TtlvError(`Big Integer ${hex(tag)} has length ${bytes.length}`);
      return { tag, type, value: readSigned(bytes) };
    case 'boolean': {
      const raw = bytes.readBigUInt64BE(0);
      if (raw > 1n) throw new TtlvError(`Boolean ${hex(tag)} is neither 0 nor 1`);
      return { tag, type, value: raw === 1n };
    }
    case 'textString':
      try {
        return { tag, type, value: UTF8.decode(bytes) };
      } catch {
        throw new TtlvError(`Text String ${hex(tag)} is not UTF-8`);
      }
    case 'byteString':
      // A copy: the frame it came from is zeroed once decoded (it may hold key material).
      return { tag, type, value: Buffer.from(bytes) };
    case 'dateTime':
      return { tag, type, value: new Date(Number(bytes.readBigInt64BE(0)) * 1000) };
  }
}

function decodeItems(buffer: Buffer, depth: number): Ttlv[] {
  if (depth > MAX_DEPTH) throw new TtlvError('structures nested too deeply');
  const items: Ttlv[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const { item, next } = decodeAt(buffer, offset, depth);
    items.push(item);
    offset = next;
  }
  return items;
}

function decodeAt(buffer: Buffer, offset: number, depth: number): { item: Ttlv; next: number } {
  if (buffer.length - offset < HEADER) throw new TtlvError('truncated item header');
  const tag = buffer.readUIntBE(offset, 3);
  const code = buffer.readUInt8(offset + 3);
  const length = buffer.readUInt32BE(offset + 4);
  const type = TYPES_BY_CODE.get(code);
  if (type === undefined) throw new TtlvError(`unknown item type 0x${code.toString(16)} at tag ${hex(tag)}`);
  const fixed = FIXED_LENGTH[type];
  if (fixed !== undefined && length !== fixed) throw new TtlvError(`${type} ${hex(tag)} has length ${length}, not ${fixed}`);
  // A Structure's length is its items' encoded size, already a multiple of 8; other values are padded.
  const span = type === 'structure' ? length : padded(length);
  if (type === 'structure' && length % 8 !== 0) throw new TtlvError(`structure ${hex(tag)} length ${length} is not a multiple of 8`);
  const start = offset + HEADER;
  if (span > buffer.length - start) throw new TtlvError(`item ${hex(tag)} runs past its enclosing data`);
  const item = decodeValue(tag, type, buffer.subarray(start, start + length), depth);
  return { item, next: start + span };
}

/** Decodes exactly one item that fills `buffer`. */
export function decodeTtlv(buffer: Buffer): Ttlv {
  const { item, next } = decodeAt(buffer, 0, 0);
  if (next !== buffer.length) throw new TtlvError(`${buffer.length - next} bytes after the item`);
  return item;
}

export function hex(tag: number): string {
  return `0x${tag.toString(16).padStart(6, '0')}`;
}

// Typed reading of decoded structures: a missing or mistyped field is a TtlvError naming the tag.

type Of<T extends TtlvType> = Extract<Ttlv, { type: T }>;

function fieldsOf(parent: Ttlv): readonly Ttlv[] {
  if (parent.type !== 'structure') throw new TtlvError(`${hex(parent.tag)} is not a structure`);
  return parent.value;
}

/** Every child of `parent` with `tag`, each of type `type`. */
export function childrenOf<T extends TtlvType>(parent: Ttlv, tag: number, type: T): Of<T>[] {
  return fieldsOf(parent)
    .filter((item) => item.tag === tag)
    .map((item) => {
      if (item.type !== type) throw new TtlvError(`${hex(tag)} is ${item.type}, expected ${type}`);
      return item as Of<T>;
    });
}

/** The first child with `tag` (of type `type`), or undefined. */
export function optionalChild<T extends TtlvType>(parent: Ttlv, tag: number, type: T): Of<T> | undefined {
  return childrenOf(parent, tag, type)[0];
}

export function requiredChild<T extends TtlvType>(parent: Ttlv, tag: number, type: T): Of<T> {
  const item = optionalChild(parent, tag, type);
  if (item === undefined) throw new TtlvError(`missing ${hex(tag)} in ${hex(parent.tag)}`);
  return item;
}
