/**
 * The PKCS#11 (Cryptoki) values the provider uses, from the standard's headers (v2.40, unchanged
 * in 3.x). They are written out here rather than imported from pkcs11js so that the main thread
 * never loads the native addon: only the module's own worker thread does (cryptoki-host.ts).
 * test/providers/pkcs11.contract.test.ts checks them against pkcs11js.
 */

export const CKO_SECRET_KEY = 0x4;
export const CKK_AES = 0x1f;

export const CKA_CLASS = 0x0;
export const CKA_LABEL = 0x3;
export const CKA_KEY_TYPE = 0x100;
export const CKA_ID = 0x102;
export const CKA_ENCRYPT = 0x104;
export const CKA_DECRYPT = 0x105;

export const CKM_AES_GCM = 0x1087;

export const CKU_USER = 1;
export const CKF_SERIAL_SESSION = 0x4;
/** C_Initialize flag: the module may use the OS's own locking (we call it from a thread of ours). */
export const CKF_OS_LOCKING_OK = 0x2;

/** pkcs11js's tag for a CK_GCM_PARAMS mechanism parameter (a pkcs11js value, not a PKCS#11 one). */
export const PKCS11JS_PARAMS_AES_GCM = 3;
