/**
 * The customer's HSM administrator, as a separate application: a child process (forked by
 * test/support/softhsm.ts) that logs in to the test token with its own copy of SoftHSM2 and
 * generates, disables, enables and destroys keys on request. SoftHSM2 shares tokens between
 * processes through its file store, so the provider under test sees each change as it would see
 * an administrator's, on its next call.
 *
 * Requests arrive over the IPC channel as { id, op, label, keyId?, enabled? }; each answer is
 * { id, error? }.
 */
import { createRequire } from 'node:module';

type Pkcs11Module = typeof import('pkcs11js');
const pkcs11js = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;

interface Request {
  readonly id: number;
  readonly op: 'generate' | 'setUsage' | 'destroy' | 'close';
  readonly label?: string;
  readonly keyId?: string;
  readonly enabled?: boolean;
}

const [modulePath, tokenLabel, pin] = process.argv.slice(2) as [string, string, string];
const token = new pkcs11js.PKCS11();
token.load(modulePath);
token.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
const slot = token.C_GetSlotList(true).find((s) => token.C_GetTokenInfo(s).label.trimEnd() === tokenLabel);
if (slot === undefined) throw new Error(`no token labelled ${tokenLabel}`);
const session = token.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
token.C_Login(session, pkcs11js.CKU_USER, pin);

function keysLabelled(label: string): Buffer[] {
  token.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  try {
    return token.C_FindObjects(session, 1000);
  } finally {
    token.C_FindObjectsFinal(session);
  }
}

function handle(request: Request): void {
  const label = request.label ?? '';
  switch (request.op) {
    case 'generate':
      // As the docs tell customers: an AES-256 token key that never leaves the HSM, usable for
      // encrypt/decrypt only.
      token.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
        { type: pkcs11js.CKA_WRAP, value: false },
        { type: pkcs11js.CKA_UNWRAP, value: false },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: Buffer.from(request.keyId ?? '', 'hex') },
      ]);
      return;
    case 'setUsage':
      for (const key of keysLabelled(label)) {
        token.C_SetAttributeValue(session, key, [
          { type: pkcs11js.CKA_ENCRYPT, value: request.enabled === true },
          { type: pkcs11js.CKA_DECRYPT, value: request.enabled === true },
        ]);
      }
      return;
    case 'destroy':
      for (const key of keysLabelled(label)) token.C_DestroyObject(session, key);
      return;
    case 'close':
      token.C_CloseSession(session);
      token.C_Finalize();
      process.disconnect();
      return;
  }
}

process.on('message', (request: Request) => {
  try {
    handle(request);
    if (request.op !== 'close') process.send?.({ id: request.id });
  } catch (error) {
    process.send?.({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.send?.({ id: 0 });
