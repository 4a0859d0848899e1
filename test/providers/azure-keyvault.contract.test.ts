import { createAzureKeyVaultProviderFactory } from '../../src/providers/azure-keyvault/azure-keyvault-provider.js';
import { AzureKeyVaultEmulator } from '../emulators/azure-keyvault/azure-keyvault-emulator.js';
import { providerContract } from './contract/provider-contract.js';

/**
 * Azure Key Vault through @azure/identity + @azure/keyvault-keys, against the emulator in
 * test/emulators/azure-keyvault (Entra ID token endpoint + Key Vault data plane, HTTPS on
 * 127.0.0.1). The contract runs on an RSA-HSM key (a Key Vault Premium key); the oct-HSM
 * (Managed HSM, A256KW) path and the Azure-specific states follow in azure-keyvault.test.ts.
 */

const KEY = 'keystrata-cmk';
const OTHER_KEY = 'other-cmk';
let emulator: AzureKeyVaultEmulator | undefined;

function config(em: AzureKeyVaultEmulator, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { keyId: em.keyId(KEY), tenantId: em.tenantId, clientId: em.clientId, clientSecret: em.clientSecret, authorityHost: em.authorityHost, ...overrides };
}

providerContract({
  name: 'azure-keyvault',
  async setup() {
    const em = await AzureKeyVaultEmulator.start();
    emulator = em;
    em.vault.createKey(KEY, 'RSA-HSM');
    em.vault.createKey(OTHER_KEY, 'RSA-HSM');
    const host = new URL(em.vaultUrl).host;
    const factory = createAzureKeyVaultProviderFactory({
      extraVaultHosts: [host],
      extraAuthorityHosts: [new URL(em.authorityHost).host],
      ca: em.ca,
      disableChallengeResourceVerification: true,
    });
    return {
      factory,
      config: config(em),
      otherKeyConfig: config(em, { keyId: em.keyId(OTHER_KEY) }),
      badCredentialsConfig: config(em, { clientSecret: `${em.clientSecret}-old` }),
      missingKeyConfig: config(em, { keyId: em.keyId('no-such-key') }),
      serviceCalls: () => em.requests(),
      controls: {
        disableKey: async () => em.vault.setEnabled(KEY, false),
        enableKey: async () => em.vault.setEnabled(KEY, true),
        scheduleDeletion: async () => em.vault.deleteKey(KEY),
        cancelDeletion: async () => em.vault.recoverKey(KEY),
        purgeKey: async () => {
          em.vault.deleteKey(KEY);
          em.vault.purgeKey(KEY);
        },
        denyPermission: async () => {
          em.vault.denied.add('wrapKey');
          em.vault.denied.add('unwrapKey');
        },
        restorePermission: async () => em.vault.denied.clear(),
        throttle: async (on) => {
          em.vault.throttled = on;
        },
        slow: async (ms) => em.slow(ms),
        unreachable: async (on) => em.unreachable(on),
        rotateKey: async () => em.vault.rotateKey(KEY),
      },
      async reset() {
        if (em.vault.has(KEY)) {
          em.vault.recoverKey(KEY);
          em.vault.setEnabled(KEY, true);
        }
        em.vault.denied.clear();
        em.vault.throttled = false;
        em.slow(0);
        await em.unreachable(false);
      },
      async teardown() {
        await emulator?.close();
      },
    };
  },
});
