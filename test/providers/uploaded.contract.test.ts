import { randomBytes } from 'node:crypto';
import { uploadedProviderFactory } from '../../src/providers/uploaded/uploaded-provider.js';
import { providerContract } from './contract/provider-contract.js';

const NO_SERVICE = 'uploaded key material is held by keystrata itself: there is no key store to disable, throttle or reach';

providerContract({
  name: 'uploaded',
  notApplicable: {
    disableKey: NO_SERVICE,
    enableKey: NO_SERVICE,
    scheduleDeletion: NO_SERVICE,
    cancelDeletion: NO_SERVICE,
    purgeKey: 'deleting the CMK config is the purge; the provider never sees it',
    denyPermission: NO_SERVICE,
    restorePermission: NO_SERVICE,
    throttle: NO_SERVICE,
    slow: NO_SERVICE,
    unreachable: NO_SERVICE,
    rotateKey: 'a new key is a new upload (CMK replacement), not a version of this one',
    badCredentials: 'there are no credentials: the key material is the config',
    missingKey: 'there is no key name to get wrong',
  },
  async setup() {
    return {
      factory: uploadedProviderFactory,
      config: { keyMaterial: randomBytes(32).toString('base64') },
      otherKeyConfig: { keyMaterial: randomBytes(32).toString('base64') },
      controls: {},
      async reset() {},
      async teardown() {},
    };
  },
});
