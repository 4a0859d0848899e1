import { randomBytes } from 'node:crypto';
import { platformProviderFactory } from '../../src/providers/platform/platform-provider.js';
import { CONTRACT_IDENTITY, providerContract } from './contract/provider-contract.js';

const BUILT_IN = 'the platform CMK is held by keystrata (wrapped by the root key): no key store to disable, throttle or reach';
const rootWrapKey = randomBytes(32);
const factory = platformProviderFactory(rootWrapKey);

providerContract({
  name: 'platform',
  notApplicable: {
    disableKey: BUILT_IN,
    enableKey: BUILT_IN,
    scheduleDeletion: BUILT_IN,
    cancelDeletion: BUILT_IN,
    purgeKey: 'destroying a platform CMK is a keystrata lifecycle action (issue 5), not a provider state',
    denyPermission: BUILT_IN,
    restorePermission: BUILT_IN,
    throttle: BUILT_IN,
    slow: BUILT_IN,
    unreachable: BUILT_IN,
    rotateKey: 'platform CMK rotation is a keystrata lifecycle action (issue 5)',
    badCredentials: 'there are no credentials: the root key opens it',
    missingKey: 'there is no key name to get wrong',
  },
  async setup() {
    return {
      factory,
      config: { ...factory.provision(CONTRACT_IDENTITY) },
      otherKeyConfig: { ...factory.provision(CONTRACT_IDENTITY) },
      controls: {},
      async reset() {},
      async teardown() {},
    };
  },
});
