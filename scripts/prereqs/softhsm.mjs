/**
 * SoftHSM2 for the PKCS#11 provider's contract suite (test/providers/pkcs11.contract.test.ts).
 * Only the Debian package is needed here: each test run makes its own token in a temporary
 * directory (SOFTHSM2_CONF of its own), so nothing is shared between runs. The suite also runs
 * /usr/bin/python3 to hold the token's file locks (a token that does not answer): Debian's
 * python3-minimal, installed too if missing.
 *
 * Fast when already installed (a few stats); installs with apt-get otherwise (root only).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const hint = 'the PKCS#11 provider contract suite will fail; install with: apt-get install -y softhsm2 python3-minimal';

/** Where Debian puts the module and the token tool (the test fixture looks in the same places). */
const MODULE_PATHS = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'];
const UTIL = '/usr/bin/softhsm2-util';
const PYTHON = '/usr/bin/python3';

function missing() {
  const packages = [];
  if (!existsSync(UTIL) || !MODULE_PATHS.some((path) => existsSync(path))) packages.push('softhsm2');
  if (!existsSync(PYTHON)) packages.push('python3-minimal');
  return packages;
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
  const packages = missing();
  if (packages.length === 0) return 'softhsm2 ok';
  if (process.getuid?.() !== 0) throw new Error(`${packages.join(' and ')} not installed; run as root or: apt-get install -y ${packages.join(' ')}`);
  // Another apt-get (a parallel prereq step or a person) may hold the dpkg lock: wait for it.
  const install = ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '--no-install-recommends', ...packages];
  try {
    run('apt-get', install);
  } catch {
    // A fresh machine may have no (or stale) package lists yet.
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update']);
    run('apt-get', install);
  }
  const still = missing();
  if (still.length > 0) throw new Error(`apt-get install ${packages.join(' ')} left ${still.join(' and ')} missing (${UTIL}, ${MODULE_PATHS[0]}, ${PYTHON})`);
  return `softhsm2: installed ${packages.join(', ')}`;
}
