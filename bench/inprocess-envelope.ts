/**
 * In-process envelope encryption: 1 KiB records under a job scope, encrypt + decrypt per op,
 * through keystrata's service API (warm key cache, embedded SQLite) — compared in the same run
 * with the raw AES-256-GCM limit and with the AWS Encryption SDK (raw AES keyring, committing
 * unsigned suite).
 *
 *   npx tsx bench/inprocess-envelope.ts [--seconds 2] [--rounds 3]
 */
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
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
import { openKeystrata } from '../src/service/keystrata.js';
import { compare, formatRate, machineLine } from './lib/measure.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' } } });
const milliseconds = Number(values.seconds) * 1000;
const rounds = Number(values.rounds);

const record = randomBytes(1024);

// Raw AES-256-GCM: one key, a fresh random nonce per record, encrypt then decrypt. The ceiling.
const rawKey = randomBytes(32);
function rawGcm(): void {
  const nonce = randomFillSync(Buffer.allocUnsafe(12));
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
async function keystrataEnvelope(): Promise<void> {
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
    { name: 'keystrata ks1 (job scope)', op: keystrataEnvelope },
    { name: 'AWS Encryption SDK (raw AES keyring, commit suite)', op: awsEncryptionSdk },
  ],
  { rounds, milliseconds },
);
await ks.close();
rmSync(dataDir, { recursive: true, force: true });

const [raw, ours, aws] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
console.log(`# in-process encrypt+decrypt of 1 KiB records (${machineLine()}, ${rounds} rounds x ${values.seconds}s, median)`);
for (const r of results) console.log(`${r.name.padEnd(52)} ${formatRate(r.opsPerSecond).padStart(10)} pairs/s   rounds: ${r.rounds.map(formatRate).join(', ')}`);
const ofRaw = ours.opsPerSecond / raw.opsPerSecond;
const overAws = ours.opsPerSecond / aws.opsPerSecond;
console.log(`keystrata / raw AES-GCM = ${(ofRaw * 100).toFixed(1)}%   (target >= 60%: ${ofRaw >= 0.6 ? 'met' : 'NOT met'})`);
console.log(`keystrata / AWS ESDK    = ${overAws.toFixed(1)}x   (target >= 20x: ${overAws >= 20 ? 'met' : 'NOT met'})`);
