/**
 * SoftHSM2 for the PKCS#11 provider's contract suite (test/providers/pkcs11.contract.test.ts).
 * Only the Debian package is needed here: each test run makes its own token in a temporary
 * directory (SOFTHSM2_CONF of its own), so nothing is shared between runs.
 *
 * Fast when already installed (one stat per file); installs with apt-get otherwise (root only).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const hint = 'the PKCS#11 provider contract suite will fail; install with: apt-get install -y softhsm2';

/** Where Debian puts the module and the token tool (the test fixture looks in the same places). */
const MODULE_PATHS = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];
const UTIL = '/usr/bin/softhsm2-util';

function installed() {
  return existsSync(UTIL) && MODULE_PATHS.some((path) => existsSync(path));
}

function run(command, args) {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, encoding: 'utf8' });
  } catch (error) {
    const detail = `${error.stderr ?? ''}${error.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${command} ${args.join(' ')} failed${detail ? `: ${detail}` : ` (${error.message})`}`);
  }
}

export async function ensure() {
  if (installed()) return 'softhsm2 ok';
  if (process.getuid?.() !== 0) throw new Error('SoftHSM2 is not installed; run as root or: apt-get install -y softhsm2');
  // Another apt-get (a parallel prereq step or a person) may hold the dpkg lock: wait for it.
  const install = ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '--no-install-recommends', 'softhsm2'];
  try {
    run('apt-get', install);
  } catch {
    // A fresh machine may have no (or stale) package lists yet.
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update']);
    run('apt-get', install);
  }
  if (!installed()) throw new Error(`apt-get installed softhsm2 but neither ${UTIL} nor the module (${MODULE_PATHS[0]}) is there`);
  return 'softhsm2: installed';
}
