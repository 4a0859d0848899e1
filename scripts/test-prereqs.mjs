#!/usr/bin/env node
/**
 * `npm test` runs this first (pretest). It makes sure the real components the suites use are
 * there, doing as little as possible when they already are (one TCP connect and one query):
 *
 *   PostgreSQL   reachable at KEYSTRATA_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
 *                if the default local server is down it is started (pg_ctlcluster), if it is not
 *                installed it is installed (apt-get, root only); then the test database is created.
 *
 * Prints one line saying what it did. When something cannot be set up it exits 1 under CI=true;
 * elsewhere it warns and exits 0, and the affected suites fail with their own errors.
 * KEYSTRATA_TEST_STORES=sqlite skips PostgreSQL entirely.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

const CI = process.env.CI === 'true' || process.env.CI === '1';
const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';

class PrereqError extends Error {}

function run(command, args, env = process.env) {
  try {
    return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, encoding: 'utf8' });
  } catch (error) {
    const detail = `${error.stderr ?? ''}${error.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new PrereqError(`${command} ${args.join(' ')} failed${detail ? `: ${detail}` : ` (${error.message})`}`);
  }
}

function reachable(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitReachable(host, port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await reachable(host, port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Debian's cluster versions, newest first ("15", "16", …: directory names under /etc/postgresql). */
function clusterVersions() {
  if (!existsSync('/etc/postgresql')) return [];
  return readdirSync('/etc/postgresql')
    .filter((name) => /^\d+(\.\d+)?$/.test(name) && existsSync(`/etc/postgresql/${name}/main`))
    .sort((a, b) => Number(b) - Number(a));
}

/**
 * A cluster we just created ourselves has nothing in it yet, so it is made to accept the test
 * user over loopback without a password, as the suites expect. Existing clusters are never changed.
 */
function trustLoopback(version) {
  const hba = `/etc/postgresql/${version}/main/pg_hba.conf`;
  const lines = 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n';
  writeFileSync(hba, `# added by keystrata scripts/test-prereqs.mjs for the test cluster\n${lines}${readFileSync(hba, 'utf8')}`);
}

async function ensurePostgres() {
  const stores = process.env.KEYSTRATA_TEST_STORES;
  if (stores && !stores.split(',').map((s) => s.trim()).includes('postgres')) return 'postgres skipped (KEYSTRATA_TEST_STORES)';
  const url = new URL(process.env.KEYSTRATA_TEST_DATABASE_URL || DEFAULT_URL);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 5432);
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const where = `${host}:${port}`;
  const did = [];

  if (!(await reachable(host, port))) {
    // Only the default local server is ours to start or install; anything else the user runs.
    if (!['127.0.0.1', 'localhost', '::1'].includes(host) || port !== 5432) {
      throw new PrereqError(`PostgreSQL is not reachable at ${where} (KEYSTRATA_TEST_DATABASE_URL)`);
    }
    let versions = clusterVersions();
    if (versions.length === 0) {
      if (process.getuid?.() !== 0) throw new PrereqError('PostgreSQL is not installed; run as root or: apt-get install -y postgresql');
      run('apt-get', ['update']);
      run('apt-get', ['install', '-y', 'postgresql'], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
      versions = clusterVersions();
      if (versions.length === 0) throw new PrereqError('apt-get installed postgresql but created no cluster under /etc/postgresql');
      trustLoopback(versions[0]);
      did.push(`installed PostgreSQL ${versions[0]}`);
    }
    const version = versions[0];
    // The package may already have started it; "already running" is not an error for us.
    if (!(await reachable(host, port))) {
      try {
        run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
      } catch (error) {
        if (!/already running/i.test(error.message)) throw error;
      }
      did.push(`started PostgreSQL ${version}/main`);
    } else if (did.length > 0) {
      run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'reload']);
    }
    if (!(await waitReachable(host, port, 20))) throw new PrereqError(`PostgreSQL ${version}/main did not start listening on ${where}`);
  }

  const { default: pg } = await import('pg');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new PrereqError(`cannot log in to PostgreSQL at ${where} as "${url.username || 'postgres'}": ${error.message}`);
  }
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
        did.push(`created database ${database}`);
      } catch (error) {
        // Another test run created it at the same moment.
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      }
    }
  } finally {
    await client.end();
  }
  return did.length > 0 ? `postgres: ${did.join(', ')} (${where}/${database})` : `postgres ok (${where}/${database})`;
}

const steps = [
  { run: ensurePostgres, hint: 'the PostgreSQL store tests will fail; KEYSTRATA_TEST_STORES=sqlite runs without them' },
];

// One module per further component under scripts/prereqs/ (SoftHSM2 for the PKCS#11 provider,
// PyKMIP for the KMIP provider), same contract: `export const hint`, and `export async function
// ensure()` — idempotent, fast when already set up, resolving to a short description of what it
// did, throwing an Error with a clear message when it cannot.
const prereqDir = new URL('./prereqs/', import.meta.url);
if (existsSync(prereqDir)) {
  for (const file of readdirSync(prereqDir).filter((name) => name.endsWith('.mjs')).sort()) {
    const module = await import(new URL(file, prereqDir).href);
    steps.push({
      run: async () => {
        try {
          return await module.ensure();
        } catch (error) {
          throw new PrereqError(error instanceof Error ? error.message : String(error));
        }
      },
      hint: module.hint ?? `${file} failed`,
    });
  }
}

const started = Date.now();
const done = [];
const problems = [];
for (const step of steps) {
  try {
    done.push(await step.run());
  } catch (error) {
    const message = error instanceof PrereqError ? error.message : (error?.stack ?? String(error));
    problems.push(`${message} (${step.hint})`);
  }
}

if (problems.length === 0) {
  console.log(`test-prereqs: ${done.join('; ')} [${Date.now() - started} ms]`);
} else if (CI) {
  console.error(`test-prereqs: FAILED: ${problems.join('; ')}`);
  process.exit(1);
} else {
  console.warn(`test-prereqs: WARNING: ${problems.join('; ')}`);
}
