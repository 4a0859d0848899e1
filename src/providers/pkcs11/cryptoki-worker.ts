/**
 * The thread that owns one PKCS#11 module. pkcs11js calls are synchronous and a module may block
 * inside one for as long as its HSM takes (a network HSM that stops answering, a token busy with
 * another application): on the main thread that would freeze every request of every tenant, and
 * the per-call deadline could not even fire. So each module is loaded in a worker thread, which
 * runs the calls it is sent one after another; the main thread only waits for messages.
 *
 * The worker is a plain dispatcher (method name + arguments → result or error), so that all logic
 * stays in typed code on the main thread. It is evaluated from this string rather than loaded from
 * a file because the same code must run from the TypeScript sources (tests) and from dist/.
 *
 * Buffers cross by transfer, not by copy: the host sends standalone copies of its arguments and
 * moves them to the worker, which zeroes every buffer it was sent once the call is done, and moves
 * back a result that lives in one of them (a decrypted key lands in the output buffer it was sent).
 */

/** The pkcs11js methods the worker will run; anything else is refused. */
export const CRYPTOKI_METHODS = [
  'C_GetSlotList',
  'C_GetTokenInfo',
  'C_OpenSession',
  'C_CloseSession',
  'C_Login',
  'C_Logout',
  'C_FindObjectsInit',
  'C_FindObjects',
  'C_FindObjectsFinal',
  'C_GetAttributeValue',
  'C_EncryptInit',
  'C_Encrypt',
  'C_DecryptInit',
  'C_Decrypt',
] as const;

export type CryptokiMethod = (typeof CRYPTOKI_METHODS)[number];

export interface WorkerInput {
  /** Where `require('pkcs11js')` is resolved from (this package). */
  readonly resolveFrom: string;
  readonly module: string;
  readonly initFlags: number;
  readonly methods: readonly string[];
}

/** An error as the worker reports it: pkcs11js puts the CKR_… name in `message` and its value in `code`. */
export interface WorkerError {
  readonly name: string;
  readonly message: string;
  readonly code: number;
}

export type WorkerReply =
  | { readonly ready: true }
  | { readonly ready: false; readonly error: WorkerError }
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: WorkerError };

export const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const allowed = new Set(workerData.methods);

function describe(error) {
  return {
    name: (error && error.name) || 'Error',
    message: String((error && error.message) || error),
    code: error && typeof error.code === 'number' ? error.code : 0,
  };
}

// Structured clone turns Buffers into Uint8Arrays; pkcs11js wants Buffers (views, no copy).
function revive(value, sent) {
  if (value instanceof Uint8Array) {
    const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    sent.push(buffer);
    return buffer;
  }
  if (Array.isArray(value)) return value.map((item) => revive(item, sent));
  if (value && typeof value === 'object') {
    const copy = {};
    for (const [key, item] of Object.entries(value)) copy[key] = revive(item, sent);
    return copy;
  }
  return value;
}

let cryptoki = null;
try {
  const pkcs11js = createRequire(workerData.resolveFrom)('pkcs11js');
  cryptoki = new pkcs11js.PKCS11();
  cryptoki.load(workerData.module);
  try {
    cryptoki.C_Initialize({ flags: workerData.initFlags });
  } catch (error) {
    // A worker of ours that was stopped while the module was blocked may not have finalized it.
    if (!(error && error.message === 'CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw error;
  }
  parentPort.postMessage({ ready: true });
} catch (error) {
  cryptoki = null;
  parentPort.postMessage({ ready: false, error: describe(error) });
}

parentPort.on('message', (message) => {
  if (message.finalize) {
    try { cryptoki && cryptoki.C_Finalize(); } catch {}
    try { cryptoki && cryptoki.close(); } catch {}
    cryptoki = null;
    parentPort.postMessage({ id: message.id, result: null });
    return;
  }
  const sent = [];
  const args = revive(message.args, sent);
  let reply;
  let kept = null;
  try {
    if (!cryptoki) throw new Error('the PKCS#11 module is not loaded');
    if (!allowed.has(message.method)) throw new Error('method not allowed: ' + message.method);
    const result = cryptoki[message.method](...args);
    reply = { id: message.id, result: result === undefined ? null : result };
    if (result instanceof Uint8Array && sent.some((buffer) => buffer.buffer === result.buffer)) kept = result.buffer;
  } catch (error) {
    reply = { id: message.id, error: describe(error) };
  }
  for (const buffer of sent) if (buffer.buffer !== kept) buffer.fill(0);
  parentPort.postMessage(reply, kept ? [kept] : []);
});
`;
