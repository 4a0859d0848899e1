/**
 * BYOK providers (issue 4): for every CMK provider that can run here — platform and uploaded (held
 * by keystrata), vault-transit, aws-kms, gcp-kms and azure-keyvault (the emulators in
 * test/emulators/, in this process, over loopback HTTP(S)), pkcs11 (a real SoftHSM2 token) and
 * kmip (a real PyKMIP server over mutual TLS) — through keystrata's service API on embedded SQLite
 * with a real clock:
 *
 * 1. Provider calls per environment per key-cache TTL under load (target: 1). Two environments,
 *    each with its own CMK of the provider (test-and-save through ks.cmks.put); a few records
 *    encrypted in each; then the cache is cleared and `--concurrency` callers (half per
 *    environment) decrypt for `--seconds`. Unwraps are counted per environment (by CMK, at the
 *    provider keystrata's registry hands out), cross-checked with keystrata_provider_calls_total
 *    {operation="unwrap"} from ks.metrics and with the requests the key store itself saw.
 * 2. Cold-cache decrypt latency: `ks.cache.clear()`, then one timed `ks.crypto.decrypt` (store
 *    reads, one provider unwrap of the EK, unwraps down the hierarchy), repeated `--samples` times
 *    (`--kmip-samples` for PyKMIP). Interleaved with each sample, the same-run peers: a warm
 *    decrypt of the same record, and a cold decrypt in an environment on the platform CMK.
 *
 *   npm run build && node dist/bench/byok-providers.js [--seconds 10] [--ttl 2] [--concurrency 32] [--samples 200] [--kmip-samples 50] [--providers platform,uploaded,…]
 *
 * The aws-kms, gcp-kms and azure-keyvault factories are registered in keystrata's provider registry
 * as their contract tests build them (loopback endpoint hosts, the emulator's CA), since an operator
 * cannot set those through keystrata's configuration yet. PKCS#11 uses the production path: the
 * SoftHSM2 library allowed with KEYSTRATA_PKCS11_MODULES.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createAwsKmsProviderFactory } from '../src/providers/aws-kms/aws-kms-provider.js';
import { createAzureKeyVaultProviderFactory } from '../src/providers/azure-keyvault/azure-keyvault-provider.js';
import { createGcpKmsProviderFactory } from '../src/providers/gcp-kms/gcp-kms-provider.js';
import type { CmkProvider, CmkProviderFactory } from '../src/providers/provider.js';
import type { ProviderRegistry } from '../src/providers/registry.js';
import { ADMIN_ACTOR } from '../src/service/audit/audit-event.js';
import type { ChangeAudit } from '../src/service/audit/audit-event.js';
import { openKeystrata, type Keystrata } from '../src/service/keystrata.js';
import type { EnvironmentContext } from '../src/service/workspaces.js';
import { KmsEmulator } from '../test/emulators/aws-kms/kms-emulator.js';
import { AzureKeyVaultEmulator } from '../test/emulators/azure-keyvault/azure-keyvault-emulator.js';
import { GcpKmsEmulator } from '../test/emulators/gcp-kms/gcp-kms-emulator.js';
import { VaultTransitEmulator } from '../test/emulators/vault-transit/vault-transit-emulator.js';
import { startPyKmip } from '../test/support/pykmip.js';
import { SOFTHSM_MODULES, startSoftHsm } from '../test/support/softhsm.js';
import { machineLine } from './lib/measure.js';

const ALL = ['platform', 'uploaded', 'vault-transit', 'aws-kms', 'gcp-kms', 'azure-keyvault', 'pkcs11', 'kmip'] as const;
type ProviderName = (typeof ALL)[number];

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    ttl: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '32' },
    samples: { type: 'string', default: '200' },
    'kmip-samples': { type: 'string', default: '50' },
    providers: { type: 'string', default: ALL.join(',') },
  },
});
const loadSeconds = Number(values.seconds);
const ttlSeconds = Number(values.ttl);
const concurrency = Number(values.concurrency);
const samples = Number(values.samples);
const kmipSamples = Number(values['kmip-samples']);
const selected = values.providers.split(',').map((s) => s.trim()) as ProviderName[];
for (const name of selected) if (!ALL.includes(name)) throw new Error(`unknown provider ${name} (one of ${ALL.join(', ')})`);

const RECORDS_PER_ENV = 8;
const ENVIRONMENTS = ['production', 'staging'] as const;

/** A key store for one provider: the config a customer would send, and how to stop it. */
interface Fixture {
  readonly config?: Readonly<Record<string, unknown>>;
  /** A factory built for this deployment (loopback hosts, private CA), registered before use. */
  readonly factory?: CmkProviderFactory;
  /** Requests the key store itself has seen (emulator counter, PyKMIP log), when it counts them. */
  readonly serviceCalls?: () => number;
  /** What serviceCalls counts, or why there is no such count. */
  readonly serviceCallsCount?: string;
  stop(): Promise<void>;
}

const nothing = async () => undefined;

async function vaultTransit(): Promise<Fixture> {
  const vault = await VaultTransitEmulator.start();
  await vault.admin('POST', 'transit/keys/keystrata-bench', { type: 'aes256-gcm96' });
  vault.acl.writePolicy('keystrata', {
    'transit/encrypt/keystrata-bench': ['update'],
    'transit/decrypt/keystrata-bench': ['update'],
    'transit/keys/keystrata-bench': ['read'],
  });
  const token = vault.acl.createToken({ policies: ['keystrata'] });
  return {
    config: { address: vault.address, token, keyName: 'keystrata-bench' },
    serviceCalls: () => vault.calls,
    serviceCallsCount: 'transit requests',
    stop: () => vault.close(),
  };
}

async function awsKms(): Promise<Fixture> {
  const emulator = new KmsEmulator();
  await emulator.start();
  const principal = { accessKeyId: 'AKIAKEYSTRATABENCH01', secretAccessKey: randomBytes(30).toString('base64') };
  emulator.addPrincipal(principal);
  const key = emulator.keys.createKey();
  return {
    config: { region: emulator.region, keyId: key.arn, endpoint: emulator.endpoint, ...principal },
    factory: createAwsKmsProviderFactory({ extraEndpointHosts: [new URL(emulator.endpoint).host] }),
    serviceCalls: () => emulator.serviceCalls,
    serviceCallsCount: 'KMS API requests',
    stop: () => emulator.close(),
  };
}

async function gcpKms(): Promise<Fixture> {
  const emulator = await GcpKmsEmulator.start();
  const project = 'keystrata-bench';
  const keyFile = emulator.addServiceAccount(`keystrata@${project}.iam.gserviceaccount.com`, project);
  const keyName = `projects/${project}/locations/europe-west1/keyRings/keystrata/cryptoKeys/cmk`;
  emulator.keys.create(keyName);
  return {
    config: { keyName, apiEndpoint: emulator.endpoint, credentials: JSON.stringify(keyFile) },
    factory: createGcpKmsProviderFactory({ insecureTestEndpoints: true }),
    serviceCalls: () => emulator.serviceCalls,
    serviceCallsCount: 'Cloud KMS requests',
    stop: () => emulator.stop(),
  };
}

async function azureKeyVault(): Promise<Fixture> {
  const emulator = await AzureKeyVaultEmulator.start();
  // RSA-HSM (Key Vault Premium, RSA-OAEP-256), as the contract runs it.
  emulator.vault.createKey('keystrata-bench', 'RSA-HSM');
  return {
    config: {
      keyId: emulator.keyId('keystrata-bench'),
      tenantId: emulator.tenantId,
      clientId: emulator.clientId,
      clientSecret: emulator.clientSecret,
      authorityHost: emulator.authorityHost,
    },
    factory: createAzureKeyVaultProviderFactory({
      extraVaultHosts: [new URL(emulator.vaultUrl).host],
      extraAuthorityHosts: [new URL(emulator.authorityHost).host],
      ca: emulator.ca,
      disableChallengeResourceVerification: true,
    }),
    serviceCalls: () => emulator.requests(),
    serviceCallsCount: 'Key Vault + Entra ID requests',
    stop: () => emulator.close(),
  };
}

async function kmip(): Promise<Fixture> {
  const server = await startPyKmip();
  try {
    const keyId = await server.createKey();
    const before = server.operations();
    return {
      config: { host: server.host, port: server.port, caCert: server.pki.caCert, clientCert: server.pki.client.cert, clientKey: server.pki.client.key, keyId },
      // The fixture's own probe Encrypt calls come before `before`.
      serviceCalls: () => server.operations() - before,
      serviceCallsCount: 'KMIP Encrypt/Decrypt/Get Attributes in the server log',
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * A SoftHSM2 token private to this process and an AES-256 token key generated by a separate
 * administrator process, as a customer's HSM administrator would (encrypt/decrypt only, sensitive,
 * not extractable) — the same fixture the PKCS#11 contract tests use (test/support/softhsm.ts).
 */
async function pkcs11(): Promise<Fixture> {
  const hsm = await startSoftHsm('keystrata-bench');
  const keyLabel = 'keystrata-bench-cmk';
  await hsm.admin.generate(keyLabel, '01');
  return {
    // keystrata allows the module through KEYSTRATA_PKCS11_MODULES, as an operator would.
    config: { module: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin, keyLabel },
    serviceCallsCount: 'SoftHSM2 keeps no count',
    stop: () => hsm.dispose(),
  };
}

const fixtures: Record<ProviderName, () => Promise<Fixture>> = {
  platform: async () => ({ serviceCallsCount: 'no key store: keystrata holds the key', stop: nothing }),
  uploaded: async () => ({ config: { keyMaterial: randomBytes(32).toString('base64') }, serviceCallsCount: 'no key store: keystrata holds the key', stop: nothing }),
  'vault-transit': vaultTransit,
  'aws-kms': awsKms,
  'gcp-kms': gcpKms,
  'azure-keyvault': azureKeyVault,
  pkcs11,
  kmip,
};

/**
 * keystrata builds its registry from the default (public-cloud) factories and has no setting for
 * an operator's extra endpoint hosts or CA; so the bench puts the factory its fixture built into
 * the running registry, as the contract tests use it (aws-kms, gcp-kms, azure-keyvault only).
 */
function registerFactory(registry: ProviderRegistry, factory: CmkProviderFactory): void {
  const factories = (registry as unknown as { factories?: unknown }).factories;
  if (!(factories instanceof Map)) throw new Error('ProviderRegistry no longer keeps its factories in a Map named "factories": update the bench');
  (factories as Map<string, CmkProviderFactory>).set(factory.name, factory);
}

/** Unwraps per environment, and how long each took, seen at the providers the registry hands out. */
interface UnwrapLog {
  readonly calls: Map<string, number>;
  readonly durations: Map<string, number[]>;
}

function countUnwraps(ks: Keystrata): UnwrapLog {
  const log: UnwrapLog = { calls: new Map(), durations: new Map() };
  const registry = ks.providers;
  const forCmk = registry.forCmk.bind(registry);
  registry.forCmk = (cmk) => {
    const provider: CmkProvider = forCmk(cmk);
    return {
      name: provider.name,
      wrap: (key, aad) => provider.wrap(key, aad),
      describe: () => provider.describe(),
      close: () => provider.close(),
      unwrap: async (ciphertext, aad, keyVersion) => {
        log.calls.set(cmk.environmentId, (log.calls.get(cmk.environmentId) ?? 0) + 1);
        const started = performance.now();
        try {
          return await provider.unwrap(ciphertext, aad, keyVersion);
        } finally {
          const list = log.durations.get(cmk.environmentId) ?? [];
          list.push(performance.now() - started);
          log.durations.set(cmk.environmentId, list);
        }
      },
    };
  };
  return log;
}

async function unwrapMetric(ks: Keystrata, provider: string): Promise<number> {
  const text = await ks.metrics.render();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('keystrata_provider_calls_total{') && line.includes(`provider="${provider}"`) && line.includes('operation="unwrap"')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

interface Sealed {
  readonly env: EnvironmentContext;
  readonly ciphertext: string;
  readonly plaintext: string;
}

interface Row {
  readonly provider: string;
  readonly callsPerEnv: number[];
  readonly metricCalls: number;
  readonly serviceCalls: number | undefined;
  readonly serviceCallsCount: string | undefined;
  readonly decryptsPerSecond: number;
  readonly errors: number;
  readonly cold: number[];
  readonly warm: number[];
  readonly platformCold: number[];
  readonly unwrap: number[];
}

const dataDir = mkdtempSync(join(tmpdir(), 'keystrata-byok-bench-'));
const config = loadConfig(
  {
    KEYSTRATA_DATA_DIR: dataDir,
    KEYSTRATA_LOG_LEVEL: 'silent',
    KEYSTRATA_KEY_CACHE_TTL_SECONDS: String(ttlSeconds),
    KEYSTRATA_PKCS11_MODULES: SOFTHSM_MODULES.join(','),
  },
  dataDir,
);
const ks = await openKeystrata(config, { defaultMetrics: false, probeCmks: false });
const unwraps = countUnwraps(ks);

/** The audit entry the HTTP route (PUT …/cmk, action cmk.update) writes with the change, as the admin. */
function adminAudit(workspaceId: string): ChangeAudit {
  return (details) =>
    ks.audit.forChange(
      {
        workspaceId,
        environmentId: details.environment?.environment.id ?? details.environmentId ?? null,
        actor: ADMIN_ACTOR,
        action: 'cmk.update',
        target: { ...details.target },
        sourceIp: '127.0.0.1',
        requestId: `bench-${randomBytes(6).toString('hex')}`,
        outcome: 'success',
      },
      details.environment,
    );
}

async function seal(env: EnvironmentContext, count: number): Promise<Sealed[]> {
  const sealed: Sealed[] = [];
  for (let i = 0; i < count; i++) {
    const plaintext = `record ${i} of ${env.environment.name}: ${randomBytes(24).toString('base64')}`;
    const { ciphertext } = await ks.crypto.encrypt(env, { type: 'job', id: `job-${i}` }, Buffer.from(plaintext));
    sealed.push({ env, ciphertext, plaintext });
  }
  return sealed;
}

async function decryptChecked(record: Sealed): Promise<void> {
  const { plaintext } = await ks.crypto.decrypt(record.env, record.ciphertext);
  const ok = plaintext.toString('utf8') === record.plaintext;
  plaintext.fill(0);
  if (!ok) throw new Error('decrypted a wrong plaintext');
}

// The same-run peer of every cold sample: a workspace on its platform CMK (what a new workspace gets).
const baselineWs = await ks.workspaces.createWorkspace('bench-platform-baseline');
const [baseline] = await seal(await ks.workspaces.resolveEnvironment(baselineWs.id, 'production'), 1);
// Warm the JIT on the cold path before the first provider's samples.
for (let i = 0; i < 100; i++) {
  ks.cache.clear();
  await decryptChecked(baseline!);
}

async function measure(name: ProviderName, fixture: Fixture): Promise<Row> {
  if (fixture.factory) registerFactory(ks.providers, fixture.factory);
  const ws = await ks.workspaces.createWorkspace(`bench-${name}`);
  await ks.workspaces.createEnvironment(ws.id, 'staging');
  const records: Sealed[][] = [];
  for (const envName of ENVIRONMENTS) {
    const env = await ks.workspaces.resolveEnvironment(ws.id, envName);
    const saved = await ks.cmks.put(env, { provider: name, ...(fixture.config ? { config: fixture.config } : {}) }, adminAudit(ws.id));
    if (saved.provider !== name || saved.health?.state !== 'healthy') throw new Error(`${name}: CMK saved as ${JSON.stringify({ provider: saved.provider, health: saved.health })}`);
    records.push(await seal(env, RECORDS_PER_ENV));
  }
  const envIds = records.map((list) => list[0]!.env.environment.id);

  // 1. Under load, from a cold cache: half the callers on each environment, for loadSeconds. Each
  // caller yields to the event loop between decrypts, as requests arriving over a socket do: a
  // warm-cache decrypt resolves in microtasks alone, so callers that never yield would keep the
  // key store's answer (I/O) from being read — the other environment would stall for a whole TTL.
  ks.cache.clear();
  unwraps.calls.clear();
  const metricBefore = await unwrapMetric(ks, name);
  const serviceBefore = fixture.serviceCalls?.();
  let decrypts = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + loadSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const mine = records[worker % records.length]!;
      for (let i = worker; performance.now() < deadline; i++) {
        try {
          await decryptChecked(mine[i % mine.length]!);
          decrypts += 1;
        } catch {
          errors += 1;
        }
        await nextTurn();
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const callsPerEnv = envIds.map((id) => unwraps.calls.get(id) ?? 0);
  const metricCalls = (await unwrapMetric(ks, name)) - metricBefore;
  const serviceCalls = serviceBefore === undefined ? undefined : fixture.serviceCalls!() - serviceBefore;

  // 2. Cold and warm decrypts, interleaved with cold decrypts on the platform CMK.
  const count = name === 'kmip' ? kmipSamples : samples;
  const cold: number[] = [];
  const warm: number[] = [];
  const platformCold: number[] = [];
  unwraps.durations.clear();
  const record = records[0]![0]!;
  for (let i = 0; i < count; i++) {
    const runOurs = async () => {
      ks.cache.clear();
      cold.push(await timed(() => decryptChecked(record)));
      warm.push(await timed(() => decryptChecked(record)));
    };
    const runPlatform = async () => {
      ks.cache.clear();
      platformCold.push(await timed(() => decryptChecked(baseline!)));
    };
    if (i % 2 === 0) {
      await runOurs();
      await runPlatform();
    } else {
      await runPlatform();
      await runOurs();
    }
  }
  // The provider's own unwraps (the platform peer's are logged under its own environment).
  const unwrap = unwraps.durations.get(envIds[0]!) ?? [];
  return {
    provider: name,
    callsPerEnv,
    metricCalls,
    serviceCalls,
    serviceCallsCount: fixture.serviceCallsCount,
    decryptsPerSecond: decrypts / elapsed,
    errors,
    cold,
    warm,
    platformCold,
    unwrap,
  };
}

console.log(
  `# BYOK providers: key cache TTL ${ttlSeconds} s (real clock), ${loadSeconds} s of decrypts from a cold cache by ${concurrency} concurrent callers over 2 environments, ` +
    `then ${samples} cold-cache decrypts (${kmipSamples} for kmip), in-process service API on SQLite (${machineLine()})`,
);
const rows: Row[] = [];
const skipped: string[] = [];
try {
  for (const name of selected) {
    let fixture: Fixture;
    try {
      fixture = await fixtures[name]();
    } catch (error) {
      skipped.push(`${name}: not available (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
      continue;
    }
    try {
      rows.push(await measure(name, fixture));
    } finally {
      await fixture.stop();
    }
  }
} finally {
  await ks.close();
  rmSync(dataDir, { recursive: true, force: true });
}

const ms = (value: number) => (value >= 10 ? value.toFixed(1) : value.toFixed(2));
const windows = loadSeconds / ttlSeconds;
console.log('');
console.log(`## 1. Provider unwrap calls per environment per TTL under load (target 1; ${loadSeconds} s / ${ttlSeconds} s TTL = ${windows} TTLs)`);
console.log('');
console.log('| provider | unwraps production / staging | per env per TTL | all unwraps (ks metrics) | key-store requests seen | decrypts/s (errors) |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  const perTtl = r.callsPerEnv.map((calls) => (calls / windows).toFixed(2)).join(' / ');
  const seen = r.serviceCalls === undefined ? `— (${r.serviceCallsCount})` : `${r.serviceCalls} (${r.serviceCallsCount})`;
  console.log(`| ${r.provider} | ${r.callsPerEnv.join(' / ')} | ${perTtl} | ${r.metricCalls} | ${seen} | ${Math.round(r.decryptsPerSecond).toLocaleString('en-US')} (${r.errors}) |`);
}
console.log('');
console.log('## 2. Cold-cache decrypt latency (ms), same-run peers interleaved sample by sample');
console.log('');
console.log('| provider | samples | cold p50 | cold p99 | its unwrap p50 | warm p50 | platform cold p50 (peer) | cold / platform cold (p50) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const coldP50 = percentile(r.cold, 50);
  const platformP50 = percentile(r.platformCold, 50);
  console.log(
    `| ${r.provider} | ${r.cold.length} | ${ms(coldP50)} | ${ms(percentile(r.cold, 99))} | ${ms(percentile(r.unwrap, 50))} | ${ms(percentile(r.warm, 50))} | ${ms(platformP50)} | ${(coldP50 / platformP50).toFixed(2)}× |`,
  );
}
for (const line of skipped) console.log(`\n${line}`);
