import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { awsKmsProviderFactory, createAwsKmsProviderFactory } from '../../src/providers/aws-kms/aws-kms-provider.js';
import { CmkProviderError, type CmkFailureReason } from '../../src/providers/provider.js';
import { KmsEmulator } from '../emulators/aws-kms/kms-emulator.js';
import type { EmulatedKey } from '../emulators/aws-kms/kms-key-store.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

const ACCESS_KEY_ID = 'AKIAKEYSTRATATEST01';
const SECRET = 'kJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/** The factory as an operator deploys it for the emulator: its loopback host allowed as endpoint. */
const factoryFor = (emulator: KmsEmulator) => createAwsKmsProviderFactory({ extraEndpointHosts: [new URL(emulator.endpoint).host] });

function credentials(emulator: KmsEmulator, key: EmulatedKey | string): Record<string, unknown> {
  return {
    region: emulator.region,
    keyId: typeof key === 'string' ? key : key.arn,
    endpoint: emulator.endpoint,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET,
  };
}

providerContract({
  name: 'aws-kms',
  async setup() {
    const emulator = new KmsEmulator();
    await emulator.start();
    emulator.addPrincipal({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET });
    const key = emulator.keys.createKey();
    const other = emulator.keys.createKey();
    const config = credentials(emulator, key);
    return {
      factory: factoryFor(emulator),
      config,
      otherKeyConfig: credentials(emulator, other),
      // The same access key id signing with another secret: InvalidSignatureException.
      badCredentialsConfig: { ...config, secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET' },
      missingKeyConfig: credentials(emulator, randomUUID()),
      serviceCalls: () => emulator.serviceCalls,
      controls: {
        disableKey: async () => void (key.keyState = 'Disabled'),
        enableKey: async () => void (key.keyState = 'Enabled'),
        scheduleDeletion: async () => {
          key.keyState = 'PendingDeletion';
          key.deletionDate = new Date(Date.now() + 7 * 86_400_000);
        },
        // As in AWS: a cancelled deletion leaves the key Disabled (the contract enables it after).
        cancelDeletion: async () => {
          key.keyState = 'Disabled';
          delete key.deletionDate;
        },
        purgeKey: async () => emulator.keys.deleteKey(key.keyId),
        denyPermission: async () => emulator.deny(ACCESS_KEY_ID, ['Encrypt', 'Decrypt']),
        restorePermission: async () => emulator.allow(ACCESS_KEY_ID),
        throttle: async (on) => emulator.throttle(on),
        slow: async (ms) => emulator.slow(ms),
        unreachable: (on) => emulator.unreachable(on),
        rotateKey: async () => `${key.arn}/${emulator.keys.rotate(key.keyId)}`,
      },
      async reset() {
        emulator.allow(ACCESS_KEY_ID);
        emulator.throttle(false);
        emulator.slow(0);
        emulator.injectFault(null);
        await emulator.unreachable(false);
        if (key.keyState === 'Disabled') key.keyState = 'Enabled';
      },
      teardown: () => emulator.close(),
    };
  },
});

/** AWS-specific cases the shared contract has no control for. */
describe('aws-kms provider: AWS specifics', () => {
  const emulator = new KmsEmulator();
  const aad = Buffer.from('keystrata ek\0env\0ek-id\0cmk-id');
  const opened: { close(): Promise<void> }[] = [];
  const open = (config: Record<string, unknown>, identity = CONTRACT_IDENTITY) => {
    const provider = factoryFor(emulator).open(config, identity);
    opened.push(provider);
    return provider;
  };
  const reasonOf = async (call: Promise<unknown>): Promise<CmkFailureReason> => {
    const error = await call.then(
      () => new Error('expected a failure'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CmkProviderError);
    return (error as CmkProviderError).reason;
  };

  beforeAll(async () => {
    await emulator.start();
    emulator.addPrincipal({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET });
  });
  afterAll(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await emulator.close();
  });

  it('imported key material: expiring within 30 days warns, expiry is key_expired, re-import restores', async () => {
    const key = emulator.keys.createKey({ origin: 'EXTERNAL', validTo: new Date(Date.now() + 10 * 86_400_000) });
    const p = open(credentials(emulator, key));
    const wrapped = await p.wrap(randomBytes(32), aad);
    const expiring = await p.describe();
    expect(expiring).toMatchObject({ state: 'key_expiring', currentVersion: wrapped.keyVersion, expiresAt: key.validTo });

    key.validTo = new Date(Date.now() - 1000);
    expect(await reasonOf(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).toBe('key_expired');
    expect(await reasonOf(p.wrap(randomBytes(32), aad))).toBe('key_expired');
    expect((await p.describe()).state).toBe('key_expired');

    emulator.keys.reimport(key.keyId, new Date(Date.now() + 365 * 86_400_000));
    expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    expect((await p.describe()).state).toBe('healthy');
  });

  it('temporary credentials: an expired session token and an unknown access key are credentials_rejected', async () => {
    const key = emulator.keys.createKey();
    const session = emulator.addPrincipal({ accessKeyId: 'ASIAKEYSTRATATEST02', secretAccessKey: SECRET, sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN' });
    const p = open({ ...credentials(emulator, key), accessKeyId: session.accessKeyId, sessionToken: session.sessionToken });
    expect((await p.wrap(randomBytes(32), aad)).ciphertext.length).toBeGreaterThan(0);
    session.expired = true;
    expect(await reasonOf(p.wrap(randomBytes(32), aad))).toBe('credentials_rejected');
    expect((await p.describe()).state).toBe('credentials_expired');
    const unknown = open({ ...credentials(emulator, key), accessKeyId: 'AKIANOBODYKNOWSTHIS' });
    expect(await reasonOf(unknown.wrap(randomBytes(32), aad))).toBe('credentials_rejected');
    // A wrong secret: the service's answer echoes the signed headers (session token included) after
    // its first paragraph; none of it reaches keystrata's message.
    session.expired = false;
    const wrongSecret = open({ ...credentials(emulator, key), accessKeyId: session.accessKeyId, secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET', sessionToken: session.sessionToken });
    const error = (await wrongSecret.wrap(randomBytes(32), aad).catch((e: unknown) => e)) as CmkProviderError;
    expect(error.reason).toBe('credentials_rejected');
    expect(error.message).toContain('InvalidSignatureException');
    expect(error.message).not.toContain(session.sessionToken);
    expect(error.message).not.toContain('WRONGSECRET');
    expect(error.cause).toBeUndefined();
  });

  it('without keys in the config, the default credential chain is used (here: environment variables)', async () => {
    const key = emulator.keys.createKey();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = SECRET;
    try {
      const p = open({ region: emulator.region, keyId: key.arn, endpoint: emulator.endpoint });
      const wrapped = await p.wrap(randomBytes(32), aad);
      expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    } finally {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('through an alias: re-pointing it (manual rotation) gives a new version and old wraps still unwrap; a removed alias is key_not_found for new wraps', async () => {
    const key = emulator.keys.createKey();
    const next = emulator.keys.createKey();
    emulator.keys.setAlias('alias/keystrata-test', key.keyId);
    const p = open(credentials(emulator, 'alias/keystrata-test'));
    const wrapped = await p.wrap(randomBytes(32), aad);
    expect(wrapped.keyVersion).toBe(`${key.arn}/${key.currentMaterialId!}`);
    emulator.keys.setAlias('alias/keystrata-test', next.keyId);
    const rewrapped = await p.wrap(randomBytes(32), aad);
    expect(rewrapped.keyVersion.startsWith(next.arn)).toBe(true);
    expect((await p.describe()).currentVersion).toBe(rewrapped.keyVersion);
    expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    expect((await p.unwrap(rewrapped.ciphertext, aad, rewrapped.keyVersion)).length).toBe(32);
    // The recorded key must still be the one that wrapped: a version naming another key is refused.
    expect(await reasonOf(p.unwrap(wrapped.ciphertext, aad, rewrapped.keyVersion))).toBe('invalid_ciphertext');
    emulator.keys.setAlias('alias/keystrata-test', null);
    expect(await reasonOf(p.wrap(randomBytes(32), aad))).toBe('key_not_found');
    expect(await reasonOf(p.describe())).toBe('key_not_found');
    // The old key itself is still there: its wraps still unwrap; once it is deleted they are destroyed.
    expect((await p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion)).length).toBe(32);
    emulator.keys.deleteKey(key.keyId);
    expect(await reasonOf(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).toBe('key_destroyed');
  });

  it('a key policy pinned to one environment (encryption context condition) refuses the others', async () => {
    const key = emulator.keys.createKey({ requiredContext: { 'keystrata-environment': CONTRACT_IDENTITY.environmentId } });
    const wrapped = await open(credentials(emulator, key)).wrap(randomBytes(32), aad);
    const elsewhere = open(credentials(emulator, key), { ...CONTRACT_IDENTITY, environmentId: randomUUID() });
    expect(await reasonOf(elsewhere.wrap(randomBytes(32), aad))).toBe('permission_denied');
    expect(await reasonOf(elsewhere.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).toBe('permission_denied');
  });

  it('KMS-side faults (KeyUnavailableException, KMSInternalException) are unreachable; a custom key store key has the key ARN as its one version', async () => {
    const key = emulator.keys.createKey({ origin: 'AWS_CLOUDHSM' });
    const p = open(credentials(emulator, key));
    const wrapped = await p.wrap(randomBytes(32), aad);
    expect(wrapped.keyVersion).toBe(key.arn);
    expect((await p.describe()).currentVersion).toBe(key.arn);
    for (const fault of ['KeyUnavailableException', 'KMSInternalException']) {
      emulator.injectFault(fault);
      try {
        expect(await reasonOf(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).toBe('unreachable');
      } finally {
        emulator.injectFault(null);
      }
    }
    key.keyState = 'Unavailable';
    expect(await reasonOf(p.unwrap(wrapped.ciphertext, aad, wrapped.keyVersion))).toBe('unreachable');
    expect((await p.describe()).state).toBe('unreachable');
  });

  it('a refused or dropped connection is unreachable (not timeout), and the provider recovers', async () => {
    const key = emulator.keys.createKey();
    const p = open(credentials(emulator, key));
    await p.wrap(randomBytes(32), aad);
    await emulator.unreachable(true);
    try {
      // The first call may find its pooled connection reset, the second is refused: both unreachable.
      expect(await reasonOf(p.wrap(randomBytes(32), aad))).toBe('unreachable');
      expect(await reasonOf(p.describe())).toBe('unreachable');
    } finally {
      await emulator.unreachable(false);
    }
    expect((await p.wrap(randomBytes(32), aad)).ciphertext.length).toBeGreaterThan(0);
  });

  it('refuses a key that is not a symmetric encryption key, naming why', async () => {
    const key = emulator.keys.createKey({ keySpec: 'HMAC_256' });
    const error = await open(credentials(emulator, key)).wrap(randomBytes(32), aad).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'key_not_found', message: expect.stringContaining('symmetric encryption key') });
  });

  it('config: keys go in pairs, the ARN region must match, secrets never in errors', () => {
    const base = { region: 'eu-west-1', keyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' };
    expect(() => awsKmsProviderFactory.open({ ...base, accessKeyId: ACCESS_KEY_ID }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    expect(() => awsKmsProviderFactory.open({ ...base, sessionToken: 'x'.repeat(32) }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    expect(() => awsKmsProviderFactory.open({ ...base, region: 'us-east-1' }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    expect(() => awsKmsProviderFactory.open({ ...base, keyId: 'not a key' }, CONTRACT_IDENTITY)).toThrow(KeystrataError);
    const error = (() => {
      try {
        awsKmsProviderFactory.open({ ...base, accessKeyId: 'lowercase-is-invalid', secretAccessKey: SECRET }, CONTRACT_IDENTITY);
      } catch (e) {
        return e as Error;
      }
      return new Error('opened');
    })();
    expect(error).toBeInstanceOf(KeystrataError);
    expect(error.message).not.toContain(SECRET);
    for (const ok of [{}, { keyId: 'alias/keystrata' }, { keyId: 'mrk-1234abcd12ab34cd56ef1234567890ab' }, { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }]) {
      void awsKmsProviderFactory.open({ ...base, ...ok }, CONTRACT_IDENTITY).close();
    }
  });

  it('config: the endpoint must be an AWS KMS endpoint of the region over https, unless the operator allowed the host (then http only to loopback)', () => {
    const base = { region: 'eu-west-1', keyId: 'alias/keystrata' };
    const refused = (endpoint: string, factory = awsKmsProviderFactory) =>
      expect(() => factory.open({ ...base, endpoint }, CONTRACT_IDENTITY), endpoint).toThrow(expect.objectContaining({ code: 'configuration_invalid', field: 'endpoint' }));
    for (const endpoint of [
      'https://kms.eu-west-1.amazonaws.com',
      'https://kms-fips.eu-west-1.amazonaws.com/',
      'https://kms.eu-west-1.api.aws',
      'https://vpce-0123456789abcdef0-abcdefgh.kms.eu-west-1.vpce.amazonaws.com',
      'https://kms.eu-west-1.amazonaws.com:443',
    ]) {
      void awsKmsProviderFactory.open({ ...base, endpoint }, CONTRACT_IDENTITY).close();
    }
    refused('https://kms.us-east-1.amazonaws.com'); // another region
    refused('http://kms.eu-west-1.amazonaws.com'); // the EK would travel in clear
    refused('https://kms.eu-west-1.amazonaws.com:8443');
    refused('https://ec2-10-0-0-5.eu-west-1.compute.amazonaws.com'); // resolves inside the VPC
    refused('https://kms.internal.example');
    refused('http://127.0.0.1:8080'); // not allowed by the operator
    refused('https://169.254.169.254');
    const operator = createAwsKmsProviderFactory({ extraEndpointHosts: ['127.0.0.1:8080', '.kms-proxy.corp.example'] });
    void operator.open({ ...base, endpoint: 'http://127.0.0.1:8080' }, CONTRACT_IDENTITY).close();
    void operator.open({ ...base, endpoint: 'https://eu.kms-proxy.corp.example' }, CONTRACT_IDENTITY).close();
    refused('http://eu.kms-proxy.corp.example', operator); // allowed host, but not loopback: https only
    refused('http://127.0.0.1:9090', operator);
  });
});
