import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { describeStatus } from '../../src/providers/kmip/kmip-key-state.js';
import { State } from '../../src/providers/kmip/kmip-enums.js';
import { kmipProviderFactory } from '../../src/providers/kmip/kmip-provider.js';
import { CmkProviderError, type CmkProvider } from '../../src/providers/provider.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { startPyKmip, type Pem, type PyKmipServer } from '../support/pykmip.js';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

/**
 * The KMIP provider against a real PyKMIP server (test/support/pykmip.ts). The provider connects
 * through a TCP proxy (test/support/tcp-fault-proxy.ts) that can delay answers or refuse
 * connections; TLS runs end to end through it. Permission is taken away with PyKMIP's operation
 * policy file, the key is destroyed with KMIP Revoke + Destroy.
 */

let server: PyKmipServer;
let proxy: TcpFaultProxy;

beforeAll(async () => {
  server = await startPyKmip();
  proxy = await startTcpFaultProxy({ host: server.host, port: server.port });
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
}, 30_000);

function configFor(keyId: string, client: Pem = server.pki.client, caCert = server.pki.caCert): Record<string, unknown> {
  return { host: '127.0.0.1', port: proxy.port, caCert, clientCert: client.cert, clientKey: client.key, keyId };
}

const NO_REVERSIBLE_DISABLE =
  'KMIP has no reversible disable: Revoke moves a key to Deactivated (or Compromised) for good (KMIP 1.4 §3.22). Deactivated, Compromised and Pre-Active keys are reported as key_disabled — tested below, without the enable step';

providerContract({
  name: 'kmip',
  notApplicable: {
    disableKey: NO_REVERSIBLE_DISABLE,
    enableKey: NO_REVERSIBLE_DISABLE,
    scheduleDeletion: 'KMIP has no scheduled, cancellable deletion: Destroy takes effect at once (the purge case)',
    cancelDeletion: 'KMIP has no scheduled, cancellable deletion',
    throttle: 'KMIP 1.4 defines no throttling result: a busy server answers late (timeout) or refuses connections (unreachable), both tested',
    rotateKey:
      'KMIP keys have no versions: ReKey makes a new object with a new Unique Identifier, and PyKMIP 0.10 implements neither ReKey nor the Link attribute that would lead from the old key to the new one. The version is the Unique Identifier; a new key is a new CMK config',
  },
  async setup() {
    const keyId = await server.createKey();
    const otherKeyId = await server.createKey();
    let denied = false;
    return {
      factory: kmipProviderFactory,
      config: configFor(keyId),
      otherKeyConfig: configFor(otherKeyId),
      badCredentialsConfig: configFor(keyId, server.pki.rogueClient),
      missingKeyConfig: configFor('999999'),
      controls: {
        async denyPermission() {
          denied = true;
          await server.allowUse(false);
        },
        async restorePermission() {
          await server.allowUse(true);
          denied = false;
        },
        async slow(ms) {
          proxy.delay(ms);
        },
        unreachable: (on) => proxy.setReachable(!on),
        purgeKey: () => server.destroy(keyId),
      },
      serviceCalls: () => server.operations(),
      async reset() {
        proxy.delay(0);
        await proxy.setReachable(true);
        if (denied) {
          await server.allowUse(true);
          denied = false;
        }
      },
      async teardown() {},
    };
  },
});

describe('kmip provider on PyKMIP: lifecycle states, connections, config', () => {
  const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');
  const registry = new ProviderRegistry([kmipProviderFactory], { callTimeoutMs: 1500, secretsKey: randomBytes(32) });
  const opened: CmkProvider[] = [];
  const open = (config: Record<string, unknown>): CmkProvider => {
    const provider = registry.openConfig('kmip', config, CONTRACT_IDENTITY);
    opened.push(provider);
    return provider;
  };
  afterAll(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await registry.close();
  });

  const failure = async (call: Promise<unknown>): Promise<CmkProviderError> => {
    const error = await call.then(
      () => new Error('expected a failure'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CmkProviderError);
    return error as CmkProviderError;
  };

  it('a revoked (Deactivated) key refuses wrap and unwrap as key_disabled and describes as key_disabled', async () => {
    const keyId = await server.createKey();
    const p = open(configFor(keyId));
    const wrapped = await p.wrap(randomBytes(32), aad);
    await server.revoke(keyId);
    expect((await failure(p.wrap(randomBytes(32), aad))).reason).toBe('key_disabled');
    const refused = await failure(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion));
    expect(refused.reason).toBe('key_disabled');
    expect(refused.message).toContain('Deactivated');
    expect((await p.describe()).state).toBe('key_disabled');
  });

  it('a Compromised key and a Pre-Active (never activated) key are key_disabled', async () => {
    const compromised = await server.createKey();
    await server.revoke(compromised, true);
    expect((await failure(open(configFor(compromised)).wrap(randomBytes(32), aad))).reason).toBe('key_disabled');
    const preActive = await server.createKey({ activate: false });
    const p = open(configFor(preActive));
    expect((await failure(p.wrap(randomBytes(32), aad))).message).toContain('Pre-Active');
    expect(await p.describe()).toMatchObject({ state: 'key_disabled', currentVersion: preActive });
  });

  it('a server certificate the configured CA did not sign is credentials_rejected', async () => {
    const keyId = await server.createKey();
    const p = open(configFor(keyId, server.pki.client, server.pki.rogueClient.cert));
    expect((await failure(p.wrap(randomBytes(32), aad))).reason).toBe('credentials_rejected');
  });

  it('a certificate of the right CA without the clientAuth usage is credentials_rejected (KMIP Authentication Not Successful)', async () => {
    const keyId = await server.createKey();
    const p = open(configFor(keyId, server.pki.notForClients));
    const refused = await failure(p.wrap(randomBytes(32), aad));
    expect(refused.reason).toBe('credentials_rejected');
    expect(refused.message).toContain('Authentication Not Successful');
    expect((await p.describe()).state).toBe('credentials_expired');
  });

  it('keeps one TLS connection for many calls, and recovers after an abandoned (timed-out) call', async () => {
    const keyId = await server.createKey();
    const p = open(configFor(keyId));
    const before = proxy.connections();
    const key = randomBytes(32);
    for (let i = 0; i < 5; i++) expect(await p.unwrap((await p.wrap(key, aad)).ciphertext, aad, keyId)).toEqual(key);
    expect((await p.describe()).state).toBe('healthy');
    expect(proxy.connections() - before).toBe(1);
    proxy.delay(4000);
    try {
      expect((await failure(p.wrap(key, aad))).reason).toBe('timeout');
    } finally {
      proxy.delay(0);
    }
    // The late answer must not be taken for the next call's: a new connection carries it.
    const again = await p.wrap(key, aad);
    expect(await p.unwrap(again.ciphertext, aad, again.keyVersion)).toEqual(key);
    expect(proxy.connections() - before).toBe(2);
  }, 20_000);

  it('resends once on a new connection when the server dropped the idle one as it was reused', async () => {
    const keyId = await server.createKey();
    const p = open(configFor(keyId));
    const key = randomBytes(32);
    const first = await p.wrap(key, aad);
    const before = proxy.connections();
    proxy.dropIdleConnections();
    expect(await p.unwrap(first.ciphertext, aad, first.keyVersion)).toEqual(key);
    expect(proxy.connections() - before).toBe(1);
  });

  it('checks certificates and key locally in open(), naming the field and never the key', () => {
    const good = configFor('1');
    const attempt = (config: Record<string, unknown>) => {
      try {
        kmipProviderFactory.open(config, CONTRACT_IDENTITY);
      } catch (error) {
        return error as KeystrataError;
      }
      throw new Error('open() accepted a bad config');
    };
    const mismatched = attempt({ ...good, clientKey: server.pki.rogueClient.key });
    expect(mismatched).toBeInstanceOf(KeystrataError);
    expect(mismatched.message).toContain('clientKey');
    expect(mismatched.message).not.toContain(server.pki.rogueClient.key.split('\n')[1]);
    expect(attempt({ ...good, caCert: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n' }).message).toContain('caCert');
    expect(attempt({ ...good, port: 70_000 }).message).toContain('port');
  });
});

describe('kmip key states without a server (Deactivation Date, which PyKMIP does not keep)', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const day = 24 * 60 * 60 * 1000;
  const at = (days: number) => new Date(now.getTime() + days * day);

  it('an Active key is healthy, key_expiring within 30 days of its Deactivation Date, key_expired past it', () => {
    expect(describeStatus({ state: State.Active, deactivationDate: null, revoked: false }, 'k', now)).toMatchObject({ state: 'healthy', currentVersion: 'k' });
    expect(describeStatus({ state: State.Active, deactivationDate: at(90), revoked: false }, 'k', now)).toMatchObject({ state: 'healthy', expiresAt: at(90) });
    expect(describeStatus({ state: State.Active, deactivationDate: at(10), revoked: false }, 'k', now)).toMatchObject({ state: 'key_expiring', expiresAt: at(10) });
    expect(describeStatus({ state: State.Active, deactivationDate: at(-1), revoked: false }, 'k', now).state).toBe('key_expired');
  });

  it('Deactivated by its date is key_expired; revoked is key_disabled; Destroyed is key_deleted', () => {
    expect(describeStatus({ state: State.Deactivated, deactivationDate: at(-1), revoked: false }, 'k', now).state).toBe('key_expired');
    expect(describeStatus({ state: State.Deactivated, deactivationDate: at(-1), revoked: true }, 'k', now).state).toBe('key_disabled');
    expect(describeStatus({ state: State.Destroyed, deactivationDate: null, revoked: true }, 'k', now).state).toBe('key_deleted');
  });
});
