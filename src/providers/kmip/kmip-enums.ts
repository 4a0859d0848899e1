/**
 * The KMIP 1.4 tags and enumeration values keystrata uses (KMIP 1.4 spec §9.1.3). Only these:
 * a full table would be a thousand lines nobody reads.
 */

export const Tag = {
  ActivationDate: 0x420001,
  Attribute: 0x420008,
  AttributeIndex: 0x420009,
  AttributeName: 0x42000a,
  AttributeValue: 0x42000b,
  BatchCount: 0x42000d,
  BatchItem: 0x42000f,
  BlockCipherMode: 0x420011,
  CryptographicAlgorithm: 0x420028,
  CryptographicLength: 0x42002a,
  CryptographicParameters: 0x42002b,
  CryptographicUsageMask: 0x42002c,
  DeactivationDate: 0x42002f,
  IvCounterNonce: 0x42003d,
  ObjectType: 0x420057,
  Operation: 0x42005c,
  OperationPolicyName: 0x42005d,
  ProtocolVersion: 0x420069,
  ProtocolVersionMajor: 0x42006a,
  ProtocolVersionMinor: 0x42006b,
  RequestHeader: 0x420077,
  RequestMessage: 0x420078,
  RequestPayload: 0x420079,
  ResponseHeader: 0x42007a,
  ResponseMessage: 0x42007b,
  ResponsePayload: 0x42007c,
  ResultMessage: 0x42007d,
  ResultReason: 0x42007e,
  ResultStatus: 0x42007f,
  RevocationReason: 0x420081,
  RevocationReasonCode: 0x420082,
  State: 0x42008d,
  TemplateAttribute: 0x420091,
  UniqueIdentifier: 0x420094,
  Data: 0x4200c2,
  TagLength: 0x4200ce,
  AuthenticatedEncryptionAdditionalData: 0x4200fe,
  AuthenticatedEncryptionTag: 0x4200ff,
} as const;

export const Operation = {
  Create: 0x01,
  GetAttributes: 0x0b,
  Activate: 0x12,
  Revoke: 0x13,
  Destroy: 0x14,
  Encrypt: 0x1f,
  Decrypt: 0x20,
} as const;

export const ResultStatus = { Success: 0, OperationFailed: 1, OperationPending: 2, OperationUndone: 3 } as const;

/** Result Reason (§9.1.3.2.29); the KMIP 2.0 values some 1.x servers already send are included. */
export const ResultReason = {
  ItemNotFound: 0x01,
  ResponseTooLarge: 0x02,
  AuthenticationNotSuccessful: 0x03,
  InvalidMessage: 0x04,
  OperationNotSupported: 0x05,
  MissingData: 0x06,
  InvalidField: 0x07,
  FeatureNotSupported: 0x08,
  CryptographicFailure: 0x0a,
  IllegalOperation: 0x0b,
  PermissionDenied: 0x0c,
  ObjectArchived: 0x0d,
  ObjectDestroyed: 0x36,
  ObjectNotFound: 0x37,
  NotAuthorised: 0x39,
  WrongKeyLifecycleState: 0x43,
  GeneralFailure: 0x100,
} as const;

export const ObjectType = { SymmetricKey: 0x02 } as const;
export const CryptographicAlgorithm = { AES: 0x03 } as const;
export const BlockCipherMode = { GCM: 0x09 } as const;
export const CryptographicUsageMask = { Encrypt: 0x04, Decrypt: 0x08 } as const;
export const RevocationReasonCode = { Unspecified: 0x01, KeyCompromise: 0x02, CessationOfOperation: 0x06 } as const;

export const State = {
  PreActive: 1,
  Active: 2,
  Deactivated: 3,
  Compromised: 4,
  Destroyed: 5,
  DestroyedCompromised: 6,
} as const;

export const STATE_NAMES: Readonly<Record<number, string>> = {
  1: 'Pre-Active',
  2: 'Active',
  3: 'Deactivated',
  4: 'Compromised',
  5: 'Destroyed',
  6: 'Destroyed Compromised',
};

const REASON_NAMES = new Map<number, string>(Object.entries(ResultReason).map(([name, value]) => [value, name.replace(/([a-z])([A-Z])/g, '$1 $2')]));

/** "Permission Denied", or "reason 0x2a" for one this table leaves out. */
export function reasonName(reason: number | undefined): string {
  if (reason === undefined) return 'no reason given';
  return REASON_NAMES.get(reason) ?? `reason 0x${reason.toString(16)}`;
}
