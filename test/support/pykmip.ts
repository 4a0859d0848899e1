import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmipClient } from '../../src/providers/kmip/kmip-client.js';
import { kmipSecureContext } from '../../src/providers/kmip/kmip-connection.js';
import { CryptographicAlgorithm, CryptographicUsageMask, ObjectType, Operation, ResultReason, RevocationReasonCode, Tag } from '../../src/providers/kmip/kmip-enums.js';
import { KmipResultError } from '../../src/providers/kmip/kmip-messages.js';
import { enumeration, integer, requiredChild, structure, textString, type Ttlv } from '../../src/providers/kmip/ttlv.js';

/**
 * A real PyKMIP server (Debian python3-pykmip, installed by scripts/prereqs/pykmip.mjs) for the
 * KMIP provider's tests: a throwaway CA, server and client certificates made with openssl, a
 * server.conf, an operation policy file, and `pykmip-server` on a free loopback port.
 *
 * PyKMIP runs as three processes (server, policy monitor, multiprocessing manager) and takes up to
 * 10 s to honour SIGTERM, so it is started in its own process group and stopped with SIGKILL to
 * that group: the suite stays fast and leaves nothing behind.
 */

/** Operation policy of the test keys; `allowUse(false)` takes Get (which governs Encrypt/Decrypt in PyKMIP) away. */
export const TEST_POLICY = 'keystrata-test';
const PYTHON = '/usr/bin/python3';
const SERVER = '/usr/bin/pykmip-server';

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export interface PyKmipPki {
  readonly caCert: string;
  /** CN keystrata-test, clientAuth, signed by the server's CA: owns the test keys. */
  readonly client: Pem;
  /** Same CN, signed by a CA the server does not trust. */
  readonly rogueClient: Pem;
  /** Signed by the server's CA, without an extended key usage: TLS accepts it, PyKMIP answers Authentication Not Successful. */
  readonly notForClients: Pem;
}

export interface PyKmipServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly pki: PyKmipPki;
  /** Creates an AES-256 key (usage Encrypt|Decrypt, policy TEST_POLICY) and activates it; returns its Unique Identifier. */
  createKey(options?: { activate?: boolean }): Promise<string>;
  /** Revoke: Deactivated, or Compromised when `compromised`. */
  revoke(id: string, compromised?: boolean): Promise<void>;
  /** Revoke (if still Active) and Destroy. */
  destroy(id: string): Promise<void>;
  /** Rewrites the policy file and waits until the server applies it. */
  allowUse(allowed: boolean): Promise<void>;
  /** How many Encrypt, Decrypt and Get Attributes operations the server has processed (from its log). */
  operations(): number;
  stop(): Promise<void>;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** An EC P-256 key and certificate for `cn`, signed by `ca` (or self-signed CA when `ca` is null). */
function issue(dir: string, name: string, cn: string, ca: string | null, extensions: string): Pem {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${cn}`];
  writeFileSync(join(dir, `${name}.ext`), extensions);
  if (ca === null) {
    openssl(dir, 'req', '-x509', ...ec, '-days', '2', '-out', `${name}.pem`, '-extensions', 'v3', '-config', `${name}.ext`);
  } else {
    openssl(dir, 'req', '-new', ...ec, '-out', `${name}.csr`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
  return { cert: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

function makePki(dir: string): PyKmipPki {
  const caExt = '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
  const ca = issue(dir, 'ca', 'keystrata test KMIP CA', null, caExt);
  issue(dir, 'rogue-ca', 'keystrata test rogue CA', null, caExt);
  issue(dir, 'server', '127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const client = issue(dir, 'client', 'keystrata-test', 'ca', 'extendedKeyUsage=clientAuth\n');
  const rogueClient = issue(dir, 'rogue-client', 'keystrata-test', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const notForClients = issue(dir, 'not-for-clients', 'keystrata-test', 'ca', 'keyUsage=critical,digitalSignature\n');
  return { caCert: ca.cert, client, rogueClient, notForClients };
}

function writePolicy(dir: string, allowUse: boolean): void {
  const owner = 'ALLOW_OWNER';
  const rules = { GET: allowUse ? owner : 'DISALLOW_ALL', GET_ATTRIBUTES: owner, GET_ATTRIBUTE_LIST: owner, ACTIVATE: owner, REVOKE: owner, DESTROY: owner };
  // Written beside and renamed into place: the monitor (polling each second) never reads half a file.
  const file = join(dir, 'policies', 'keystrata.json');
  writeFileSync(`${file}.tmp`, JSON.stringify({ [TEST_POLICY]: { preset: { SYMMETRIC_KEY: rules } } }));
  renameSync(`${file}.tmp`, file);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `attempt` until it returns true (or throws something else than a KMIP refusal) within `ms`. */
async function until(what: string, ms: number, attempt: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await attempt()) return;
    await sleep(100);
  }
  throw new Error(`PyKMIP: ${what} did not happen within ${ms} ms`);
}

const attribute = (name: string, value: Ttlv): Ttlv => structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue }]);

export async function startPyKmip(): Promise<PyKmipServer> {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run node scripts/test-prereqs.mjs (installs python3-pykmip)`);
  const dir = mkdtempSync(join(tmpdir(), 'keystrata-pykmip-'));
  mkdirSync(join(dir, 'policies'));
  const pki = makePki(dir);
  writePolicy(dir, true);
  const port = await freePort();
  const conf = join(dir, 'server.conf');
  writeFileSync(
    conf,
    [
      '[server]',
      'hostname=127.0.0.1',
      `port=${port}`,
      `certificate_path=${join(dir, 'server.pem')}`,
      `key_path=${join(dir, 'server.key')}`,
      `ca_path=${join(dir, 'ca.pem')}`,
      // "Basic" fails under OpenSSL 3; mutual TLS is always on.
      'auth_suite=TLS1.2',
      `policy_path=${join(dir, 'policies')}`,
      'enable_tls_client_auth=True',
      'logging_level=INFO',
      `database_path=${join(dir, 'pykmip.db')}`,
      '',
    ].join('\n'),
  );
  const log = join(dir, 'server.log');
  let stderr = '';
  const child: ChildProcess = spawn(PYTHON, [SERVER, '-f', conf, '-l', log], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // The server, its policy monitor and its multiprocessing manager share the group we made.
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killGroup);

  const admin = new KmipClient({ host: '127.0.0.1', port, secureContext: kmipSecureContext({ ca: pki.caCert, cert: pki.client.cert, key: pki.client.key }) });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await admin.close();
    killGroup();
    await Promise.race([exited, sleep(5000)]);
    process.off('exit', killGroup);
    rmSync(dir, { recursive: true, force: true });
  };

  const probeKey = { id: '' };
  try {
    await until('listening', 20_000, async () => {
      if (child.exitCode !== null) throw new Error(`pykmip-server exited (${child.exitCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return connects(port);
    });
    const create = async (activate: boolean): Promise<string> => {
      const created = await admin.call(Operation.Create, [
        enumeration(Tag.ObjectType, ObjectType.SymmetricKey),
        structure(Tag.TemplateAttribute, [
          attribute('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
          attribute('Cryptographic Length', integer(0, 256)),
          attribute('Cryptographic Usage Mask', integer(0, CryptographicUsageMask.Encrypt | CryptographicUsageMask.Decrypt)),
          attribute('Operation Policy Name', textString(0, TEST_POLICY)),
        ]),
      ]);
      const id = requiredChild(created, Tag.UniqueIdentifier, 'textString').value;
      // The policy monitor loads policy files about a second after start: until then the key's
      // policy is unknown and Activate is refused.
      if (activate) await until('activation', 10_000, () => admin.call(Operation.Activate, [textString(Tag.UniqueIdentifier, id)]).then(() => true, refusedOnly));
      return id;
    };
    probeKey.id = await create(true);

    const revoke = async (id: string, compromised = false) => {
      const code = compromised ? RevocationReasonCode.KeyCompromise : RevocationReasonCode.CessationOfOperation;
      await admin.call(Operation.Revoke, [textString(Tag.UniqueIdentifier, id), structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, code)])]);
    };
    const probe = () => admin.encrypt(probeKey.id, Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(0)).then(() => true, (error: unknown) => refusedOnly(error).then(() => false));
    return {
      host: '127.0.0.1',
      port,
      pki,
      createKey: (options) => create(options?.activate ?? true),
      revoke,
      async destroy(id) {
        // PyKMIP refuses to destroy an Active key.
        await revoke(id).catch(refusedOnly);
        await admin.call(Operation.Destroy, [textString(Tag.UniqueIdentifier, id)]);
      },
      async allowUse(allowed) {
        writePolicy(dir, allowed);
        await until(allowed ? 'policy allowing use' : 'policy denying use', 10_000, async () => (await probe()) === allowed);
      },
      operations() {
        if (!existsSync(log)) return 0;
        return readFileSync(log, 'utf8').match(/Processing operation: (Encrypt|Decrypt|GetAttributes)$/gm)?.length ?? 0;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Resolves false for a KMIP refusal (the caller retries), rethrows anything else. */
async function refusedOnly(error: unknown): Promise<false> {
  if (error instanceof KmipResultError && (error.reason === ResultReason.PermissionDenied || error.reason === ResultReason.IllegalOperation)) return false;
  throw error;
}
