/**
 * In-process envelope encryption: 1 KiB records under a job scope, encrypt + decrypt per op,
 * through keystrata's service API (warm key cache, embedded SQLite) — compared in the same run
 * with the raw AES-256-GCM limit and with the AWS Encryption SDK (raw AES keyring, committing
 * unsigned suite).
 *
 *   npm run build && node dist/bench/inprocess-envelope.js [--seconds 0.25] [--rounds 40]
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  buildClient,
} from '@aws-crypto/client-node';
import { loadConfig } from '../src/config.js';
import { fillNonce } from '../src/core/nonce.js';
import { openKeystrata } from '../src/service/keystrata.js';
import { compare, formatRate, machineLine, pairedRatio, type Result } from './lib/measure.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.25' }, rounds: { type: 'string', default: '40' } } });
const milliseconds = Number(values.seconds) * 1000;
const rounds = Number(values.rounds);

const record = randomBytes(1024);

// Raw AES-256-GCM: one key, a fresh random nonce per record (from the same pooled nonce source
// keystrata uses, so the ratio measures the envelope's overhead, not nonce generation), encrypt
// then decrypt, no AAD, no encoding. The ceiling.
const rawKey = randomBytes(32);
const rawNonce = Buffer.alloc(12);
function rawGcm(): void {
  const nonce = rawNonce;
  fillNonce(nonce);
  const cipher = createCipheriv('aes-256-gcm', rawKey, nonce);
  const ct = Buffer.concat([cipher.update(record), cipher.final()]);
  const tag = cipher.getAuthTag();
  const decipher = createDecipheriv('aes-256-gcm', rawKey, nonce);
  decipher.setAuthTag(tag);
  Buffer.concat([decipher.update(ct), decipher.final()]);
}

// keystrata, through the same service calls the HTTP routes make.
const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-bench-'));
const config = loadConfig({ KEYSTRATA_DATA_DIR: dataDir, KEYSTRATA_LOG_LEVEL: 'silent' }, dataDir);
const ks = await openKeystrata(config);
const workspace = await ks.workspaces.createWorkspace('bench');
const env = await ks.workspaces.resolveEnvironment(workspace.id, 'production');
const scope = { type: 'job', id: 'job-bench-1' } as const;
// Binary ks1 envelopes (what an in-process caller that stores bytes uses) ...
async function keystrataBinary(): Promise<void> {
  const { envelope } = await ks.crypto.encryptBinary(env, scope, record);
  const { plaintext } = await ks.crypto.decryptBinary(env, envelope, scope);
  plaintext.fill(0);
}
// ... and the ks1 text form the HTTP API returns (adds base64url encode + decode).
async function keystrataText(): Promise<void> {
  const { ciphertext } = await ks.crypto.encrypt(env, scope, record);
  const { plaintext } = await ks.crypto.decrypt(env, ciphertext, scope);
  plaintext.fill(0);
}

// AWS Encryption SDK, raw AES keyring, committing unsigned suite.
const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const keyring = new RawAesKeyringNode({
  keyName: 'bench-key',
  keyNamespace: 'bench',
  unencryptedMasterKey: new Uint8Array(randomBytes(32)),
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
});
async function awsEncryptionSdk(): Promise<void> {
  const { result } = await esdk.encrypt(keyring, record, {
    suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    encryptionContext: { job: scope.id },
  });
  await esdk.decrypt(keyring, result);
}

const results = await compare(
  [
    { name: 'raw AES-256-GCM', op: rawGcm },
    { name: 'keystrata ks1 binary (job scope)', op: keystrataBinary },
    { name: 'keystrata ks1 text (job scope)', op: keystrataText },
    { name: 'AWS Encryption SDK (raw AES keyring, commit suite)', op: awsEncryptionSdk },
  ],
  { rounds, milliseconds },
);
await ks.close();
rmSync(dataDir, { recursive: true, force: true });

const [raw, binary, text, aws] = results as [Result, Result, Result, Result];
console.log(`# in-process encrypt+decrypt of 1 KiB records (${machineLine()}, ${rounds} interleaved rounds x ${values.seconds}s)`);
for (const r of results) console.log(`${r.name.padEnd(52)} ${formatRate(r.opsPerSecond).padStart(10)} pairs/s (median round)`);
const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const binaryOfRaw = pairedRatio(binary, raw);
const textOfRaw = pairedRatio(text, raw);
console.log(`keystrata binary / raw AES-GCM = ${percent(binaryOfRaw)} (median of per-round ratios; target >= 60%: ${binaryOfRaw >= 0.6 ? 'met' : 'NOT met'})`);
console.log(`keystrata text   / raw AES-GCM = ${percent(textOfRaw)} (the text form adds base64url encode + decode)`);
for (const [label, r] of [['binary', binary], ['text  ', text]] as const) {
  const overAws = pairedRatio(r, aws);
  console.log(`keystrata ${label} / AWS ESDK   = ${overAws.toFixed(1)}x (target >= 20x: ${overAws >= 20 ? 'met' : 'NOT met'})`);
}
