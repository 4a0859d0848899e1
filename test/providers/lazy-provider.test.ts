import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { KeystrataError } from '../../src/errors.js';
import { providerFactories } from '../../src/providers/factories.js';
import { lazyProviderFactory } from '../../src/providers/lazy-provider.js';
import type { CmkProvider, CmkProviderFactory } from '../../src/providers/provider.js';

const identity = { cmkId: '7d6f3b1e-0000-4000-8000-000000000001', environmentId: '7d6f3b1e-0000-4000-8000-000000000002' };

describe('lazyProviderFactory', () => {
  function counting() {
    const counts = { loads: 0, opens: 0, closes: 0 };
    const real: CmkProviderFactory = {
      name: 'lazy-test',
      configSchema: Type.Object({}),
      secretFields: [],
      open(): CmkProvider {
        counts.opens++;
        return {
          name: 'lazy-test',
          wrap: async (key) => ({ ciphertext: Buffer.from(key).reverse(), keyVersion: 'v1' }),
          unwrap: async (ciphertext) => Buffer.from(ciphertext).reverse(),
          describe: async () => ({ state: 'healthy', currentVersion: 'v1' }),
          close: async () => {
            counts.closes++;
          },
        };
      },
    };
    const lazy = lazyProviderFactory({
      name: 'lazy-test',
      configSchema: real.configSchema,
      secretFields: [],
      validate: (config) => {
        if ('bad' in config) throw new KeystrataError('configuration_invalid', 'bad');
      },
      load: async () => {
        counts.loads++;
        return real;
      },
    });
    return { counts, lazy };
  }

  it('validates at open, loads the implementation once on the first call, and delegates', async () => {
    const { counts, lazy } = counting();
    expect(() => lazy.open({ bad: true }, identity)).toThrow(KeystrataError);
    const a = lazy.open({}, identity);
    const b = lazy.open({}, identity);
    expect(counts).toEqual({ loads: 0, opens: 0, closes: 0 });
    const wrapped = await a.wrap(Buffer.from([1, 2, 3]), Buffer.alloc(0));
    expect(await b.unwrap(wrapped.ciphertext, Buffer.alloc(0), wrapped.keyVersion)).toEqual(Buffer.from([1, 2, 3]));
    expect((await a.describe()).state).toBe('healthy');
    expect(counts).toEqual({ loads: 1, opens: 2, closes: 0 });
    await a.close();
    await b.close();
    expect(counts.closes).toBe(2);
    await expect(a.describe()).rejects.toThrow(/closed/);
  });

  it('a provider closed before use never loads anything', async () => {
    const { counts, lazy } = counting();
    await lazy.open({}, identity).close();
    expect(counts).toEqual({ loads: 0, opens: 0, closes: 0 });
  });

  it('the registered AWS and Azure factories refuse bad configs at open, before loading their SDKs', () => {
    const factories = providerFactories({ name: 'platform', configSchema: Type.Object({}), secretFields: [], open: () => ({}) as CmkProvider });
    const aws = factories.find((f) => f.name === 'aws-kms')!;
    const azure = factories.find((f) => f.name === 'azure-keyvault')!;
    expect(() => aws.open({ region: 'eu-west-1', keyId: 'k', endpoint: 'http://169.254.169.254/' }, identity)).toThrow(KeystrataError);
    expect(() => azure.open({ keyId: 'https://evil.example.com/keys/k', tenantId: 't', clientId: 'c', clientSecret: 's' }, identity)).toThrow(KeystrataError);
    expect(aws.secretFields).toEqual(['secretAccessKey', 'sessionToken']);
    expect(azure.secretFields).toEqual(['clientSecret']);
    expect(factories.map((f) => f.name).sort()).toEqual(['aws-kms', 'azure-keyvault', 'gcp-kms', 'kmip', 'pkcs11', 'platform', 'uploaded', 'vault-transit']);
  });
});
