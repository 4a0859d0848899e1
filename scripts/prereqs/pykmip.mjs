/**
 * Prerequisite of the KMIP provider's contract suite: a real PyKMIP server (Debian package
 * python3-pykmip), run by test/support/pykmip.ts with /usr/bin/python3 (the python3 first on PATH
 * may be another interpreter without Debian's packages). Idempotent: when the server script and
 * its Python package are present this is two stat calls.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const hint = 'the KMIP provider contract suite will fail; install it with: apt-get install -y python3-pykmip';

const SERVER = '/usr/bin/pykmip-server';
const PACKAGE_DIR = '/usr/lib/python3/dist-packages/kmip';

function run(command, args) {
  try {
    return execFileSync(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      encoding: 'utf8',
    });
  } catch (error) {
    const detail = `${error.stderr ?? ''}${error.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${command} ${args.join(' ')} failed${detail ? `: ${detail}` : ` (${error.message})`}`);
  }
}

export async function ensure() {
  if (existsSync(SERVER) && existsSync(PACKAGE_DIR)) return 'pykmip ok';
  if (process.getuid?.() !== 0) throw new Error('python3-pykmip is not installed and this is not root');
  try {
    run('apt-get', ['install', '-y', '--no-install-recommends', 'python3-pykmip']);
  } catch {
    // A fresh machine may have no package lists yet.
    run('apt-get', ['update']);
    run('apt-get', ['install', '-y', '--no-install-recommends', 'python3-pykmip']);
  }
  if (!existsSync(SERVER)) throw new Error(`apt-get installed python3-pykmip but ${SERVER} is missing`);
  return 'pykmip: installed python3-pykmip';
}
