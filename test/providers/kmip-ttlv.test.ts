import { describe, expect, it } from 'vitest';
import { Operation, ResultReason, Tag } from '../../src/providers/kmip/kmip-enums.js';
import { KmipProtocolError, KmipResultError, decodeResponse, encodeRequest, responseLength } from '../../src/providers/kmip/kmip-messages.js';
import {
  bigInteger,
  boolean,
  byteString,
  dateTime,
  decodeTtlv,
  encodeTtlv,
  enumeration,
  integer,
  interval,
  longInteger,
  requiredChild,
  structure,
  textString,
  type Ttlv,
  TtlvError,
} from '../../src/providers/kmip/ttlv.js';

/**
 * The TTLV codec against published encodings: the examples of KMIP 1.4 spec §9.1.2 and messages
 * of the KMIP 1.1 test cases (§3.1.1 Create, §11.1 Encrypt) as PyKMIP's own unit tests carry them.
 */

const hex = (...parts: string[]) => Buffer.from(parts.join('').replace(/[\s|]/g, ''), 'hex');

describe('TTLV: KMIP 1.4 spec §9.1.2 examples', () => {
  const T = 0x420020;
  const examples: [string, Ttlv, Buffer][] = [
    ['Integer 8', integer(T, 8), hex('420020 | 02 | 00000004 | 00000008 00000000')],
    ['Long Integer 123456789000000000', longInteger(T, 123456789000000000n), hex('420020 | 03 | 00000008 | 01B69B4BA5749200')],
    ['Big Integer 1234567890000000000000000000', bigInteger(T, 1234567890000000000000000000n), hex('420020 | 04 | 00000010 | 0000000003FD35EB 6BC2DF4618080000')],
    ['Enumeration 255', enumeration(T, 255), hex('420020 | 05 | 00000004 | 000000FF 00000000')],
    ['Boolean True', boolean(T, true), hex('420020 | 06 | 00000008 | 0000000000000001')],
    ['Text String "Hello World"', textString(T, 'Hello World'), hex('420020 | 07 | 0000000B | 48656C6C6F20576F726C64 0000000000')],
    ['Byte String 01 02 03', byteString(T, Buffer.from([1, 2, 3])), hex('420020 | 08 | 00000003 | 010203 0000000000')],
    ['Date-Time Fri, 14 Mar 2008 11:56:40 GMT', dateTime(T, new Date('2008-03-14T11:56:40Z')), hex('420020 | 09 | 00000008 | 0000000047DA67F8')],
    ['Interval 10 days', interval(T, 864000), hex('420020 | 0A | 00000004 | 000D2F00 00000000')],
    [
      'Structure of Enumeration 254 (420004) and Integer 255 (420005)',
      structure(T, [enumeration(0x420004, 254), integer(0x420005, 255)]),
      hex('420020 | 01 | 00000020 | 420004 | 05 | 00000004 | 000000FE 00000000 | 420005 | 02 | 00000004 | 000000FF 00000000'),
    ],
    // Two's complement, sign-extended to 8 bytes (PyKMIP test_big_integer.py).
    ['Big Integer -1000', bigInteger(T, -1000n), hex('420020 | 04 | 00000008 | FFFFFFFFFFFFFC18')],
  ];

  for (const [name, item, bytes] of examples) {
    it(`${name}: encodes to the spec's bytes and decodes back`, () => {
      expect(encodeTtlv(item).toString('hex')).toBe(bytes.toString('hex'));
      expect(decodeTtlv(bytes)).toEqual(item);
    });
  }
});

// KMIP 1.1 test cases §3.1.1: Create (AES-128, usage mask Encrypt|Decrypt), request and response.
const CREATE_REQUEST = hex(
  '42007801000001204200770100000038420069010000002042006a0200000004',
  '000000010000000042006b0200000004000000010000000042000d0200000004',
  '000000010000000042000f01000000d842005c05000000040000000100000000',
  '42007901000000c04200570500000004000000020000000042009101000000a8',
  '420008010000003042000a070000001743727970746f6772617068696320416c',
  '676f726974686d0042000b050000000400000003000000004200080100000030',
  '42000a070000001443727970746f67726170686963204c656e67746800000000',
  '42000b02000000040000008000000000420008010000003042000a0700000018',
  '43727970746f67726170686963205573616765204d61736b42000b0200000004',
  '0000000c00000000',
);
const CREATE_RESPONSE = hex(
  '42007b01000000c042007a0100000048420069010000002042006a0200000004',
  '000000010000000042006b020000000400000001000000004200920900000008',
  '000000004f9a54e542000d0200000004000000010000000042000f0100000068',
  '42005c0500000004000000010000000042007f05000000040000000000000000',
  '42007c0100000040420057050000000400000002000000004200940700000024',
  '66623462356239632d363138382d346336332d383134322d6665396333323831',
  '3239666300000000',
);
// KMIP 1.1 test cases §11.1 (completed for 1.2+ fields by PyKMIP): an Encrypt request payload.
const ENCRYPT_PAYLOAD = hex(
  '4200790100000128420094070000002462346661656531302d616132612d3434',
  '34362d386164342d3038383166333432323935390000000042002b01000000d0',
  '4200110500000004000000010000000042005f05000000040000000300000000',
  '4200380500000004000000040000000042008305000000040000000b00000000',
  '4200ae0500000004000000050000000042002805000000040000000300000000',
  '4200c5060000000800000000000000014200cd02000000040000006000000000',
  '4200ce020000000400000080000000004200cf02000000040000002000000000',
  '4200d2020000000400000040000000004200d002000000040000000000000000',
  '4200d1020000000400000001000000004200c208000000080123456789abcdef',
  '42003d08000000010100000000000000',
);

describe('TTLV and KMIP messages: KMIP test-case messages', () => {
  it('decodes and re-encodes the Encrypt request payload byte for byte', () => {
    const payload = decodeTtlv(ENCRYPT_PAYLOAD);
    expect(requiredChild(payload, Tag.UniqueIdentifier, 'textString').value).toBe('b4faee10-aa2a-4446-8ad4-0881f3422959');
    const parameters = requiredChild(payload, Tag.CryptographicParameters, 'structure');
    expect(requiredChild(parameters, Tag.CryptographicAlgorithm, 'enumeration').value).toBe(3);
    expect(requiredChild(parameters, Tag.TagLength, 'integer').value).toBe(128);
    expect(requiredChild(payload, Tag.Data, 'byteString').value.toString('hex')).toBe('0123456789abcdef');
    expect(requiredChild(payload, Tag.IvCounterNonce, 'byteString').value).toEqual(Buffer.from([1]));
    expect(encodeTtlv(payload)).toEqual(ENCRYPT_PAYLOAD);
  });

  it('encodeRequest writes the Create request of the test case, with the protocol version set to 1.4', () => {
    const message = decodeTtlv(CREATE_REQUEST);
    expect(encodeTtlv(message)).toEqual(CREATE_REQUEST);
    const batchItem = requiredChild(message, Tag.BatchItem, 'structure');
    const payload = requiredChild(batchItem, Tag.RequestPayload, 'structure');
    const expected = Buffer.from(CREATE_REQUEST);
    // Protocol Version Minor's value is at byte 48..51 (message, header, version, major come first).
    expect(expected.readUInt32BE(48)).toBe(1);
    expected.writeUInt32BE(4, 48);
    expect(encodeRequest(Operation.Create, payload.value)).toEqual(expected);
  });

  it('decodeResponse returns the payload of the Create response; an answer to another operation is a protocol error', () => {
    expect(responseLength(CREATE_RESPONSE.subarray(0, 8))).toBe(CREATE_RESPONSE.length);
    const payload = decodeResponse(CREATE_RESPONSE, Operation.Create);
    expect(requiredChild(payload, Tag.UniqueIdentifier, 'textString').value).toBe('fb4b5b9c-6188-4c63-8142-fe9c328129fc');
    expect(() => decodeResponse(CREATE_RESPONSE, Operation.Encrypt)).toThrow(KmipProtocolError);
  });

  it('a failed operation becomes KmipResultError with its reason and (printable) message', () => {
    const failed = encodeTtlv(
      structure(Tag.ResponseMessage, [
        structure(Tag.ResponseHeader, [structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, 1), integer(Tag.ProtocolVersionMinor, 4)]), integer(Tag.BatchCount, 1)]),
        structure(Tag.BatchItem, [
          enumeration(Tag.Operation, Operation.Encrypt),
          enumeration(Tag.ResultStatus, 1),
          enumeration(Tag.ResultReason, ResultReason.PermissionDenied),
          textString(Tag.ResultMessage, 'Could not locate object: 7\u0007'),
        ]),
      ]),
    );
    const error = (() => {
      try {
        decodeResponse(failed, Operation.Encrypt);
      } catch (e) {
        return e as KmipResultError;
      }
      throw new Error('no error');
    })();
    expect(error).toBeInstanceOf(KmipResultError);
    expect(error.reason).toBe(ResultReason.PermissionDenied);
    expect(error.message).toBe('KMIP Permission Denied: Could not locate object: 7?');
  });

  it('responseLength refuses what is not a Response Message, or one too large', () => {
    expect(() => responseLength(CREATE_REQUEST.subarray(0, 8))).toThrow(KmipProtocolError);
    expect(() => responseLength(hex('42007b01 7fffffff'))).toThrow(/too large/);
  });
});

describe('TTLV decoder refuses malformed input', () => {
  const bad: [string, Buffer][] = [
    ['a truncated header', hex('420020 02 0000')],
    ['an Integer of length 8', hex('420020 02 00000008 0000000000000008')],
    ['a value running past the buffer', hex('420020 08 00000010 0102030400000000')],
    ['a child running past its structure', hex('420020 01 00000008 420004 08 00000010')],
    ['a structure length that is not a multiple of 8', hex('420020 01 00000004 00000000')],
    ['an unknown type', hex('420020 0B 00000004 0000000000000000')],
    ['a Boolean of 2', hex('420020 06 00000008 0000000000000002')],
    ['text that is not UTF-8', hex('420020 07 00000002 C328000000000000')],
    ['trailing bytes', hex('420020 02 00000004 0000000800000000 00')],
  ];
  for (const [name, bytes] of bad) {
    it(name, () => {
      expect(() => decodeTtlv(bytes)).toThrow(TtlvError);
    });
  }

  it('structures nested more than 16 deep', () => {
    let item: Ttlv = integer(0x420005, 1);
    for (let i = 0; i < 20; i++) item = structure(0x420020, [item]);
    expect(() => decodeTtlv(encodeTtlv(item))).toThrow(/nested too deeply/);
  });

  it('typed reads name the tag that is missing or mistyped', () => {
    const item = structure(0x420020, [integer(0x420005, 1)]);
    expect(() => requiredChild(item, 0x420004, 'integer')).toThrow(/missing 0x420004/);
    expect(() => requiredChild(item, 0x420005, 'textString')).toThrow(/is integer, expected textString/);
  });
});
