import { vaultTransitProviderFactory } from '../../src/providers/vault-transit/vault-transit-provider.js';
import { VaultTransitEmulator } from '../emulators/vault-transit/vault-transit-emulator.js';
import type { PolicyRules } from '../emulators/vault-transit/vault-acl.js';
import { providerContract } from './contract/provider-contract.js';

/**
 * The Vault transit provider against the transit emulator (test/emulators/vault-transit), with the
 * least-privilege policy docs/byok.md gives customers: update on encrypt/decrypt, read on the key.
 * Key administration (rotate, delete) goes over the emulator's HTTP API with the root token, as an
 * operator would with the vault CLI. Provider-specific cases (retired and trimmed versions, sealed
 * Vault, key types, namespace, TLS) are in vault-transit.provider.test.ts.
 */

const KEY = 'keystrata-cmk';
const OTHER_KEY = 'other-cmk';
const MISSING_KEY = 'missing-cmk';

/** The documented policy, for each key name the fixture uses (the missing key too, so its absence — not a policy — is what fails). */
function keystrataPolicy(...names: string[]): PolicyRules {
  const rules: Record<string, PolicyRules[string]> = {};
  for (const name of names) {
    rules[`transit/encrypt/${name}`] = ['update'];
    rules[`transit/decrypt/${name}`] = ['update'];
    rules[`transit/keys/${name}`] = ['read'];
  }
  return rules;
}

const NO_SUCH_STATE = 'Vault transit keys have no';

providerContract({
  name: 'vault-transit',
  notApplicable: {
    disableKey: `${NO_SUCH_STATE} disabled state (min_decryption_version cannot exceed latest_version, so encryption never stops); the reversible cut-offs are the policy (denyPermission) and the token (badCredentials). A version retired by min_decryption_version is reported as key_disabled (provider test)`,
    enableKey: `${NO_SUCH_STATE} disabled state`,
    scheduleDeletion: `${NO_SUCH_STATE} scheduled deletion: DELETE (allowed by deletion_allowed=true) removes the key at once; see purgeKey`,
    cancelDeletion: `${NO_SUCH_STATE} scheduled deletion to cancel`,
  },
  async setup() {
    const vault = await VaultTransitEmulator.start();
    for (const name of [KEY, OTHER_KEY]) {
      const created = await vault.admin('POST', `transit/keys/${name}`, { type: 'aes256-gcm96' });
      if (created.status !== 200) throw new Error(`creating ${name}: HTTP ${created.status}`);
    }
    const policy = keystrataPolicy(KEY, OTHER_KEY, MISSING_KEY);
    vault.acl.writePolicy('keystrata', policy);
    const token = vault.acl.createToken({ policies: ['keystrata'] });
    const config = { address: vault.address, token, keyName: KEY };
    const latest = async (): Promise<string> => {
      const read = await vault.admin('GET', `transit/keys/${KEY}`);
      return String((read.body as { data: { latest_version: number } }).data.latest_version);
    };
    return {
      factory: vaultTransitProviderFactory,
      config,
      otherKeyConfig: { ...config, keyName: OTHER_KEY },
      badCredentialsConfig: { ...config, token: 'hvs.CAESIThisTokenWasNeverIssuedByThisVault' },
      missingKeyConfig: { ...config, keyName: MISSING_KEY },
      serviceCalls: () => vault.calls,
      controls: {
        // `vault policy write keystrata -` with nothing in it, then the original back.
        async denyPermission() {
          vault.acl.writePolicy('keystrata', {});
        },
        async restorePermission() {
          vault.acl.writePolicy('keystrata', policy);
        },
        async throttle(on) {
          vault.throttle(on);
        },
        async slow(ms) {
          vault.slow(ms);
        },
        async unreachable(on) {
          await vault.unreachable(on);
        },
        async rotateKey() {
          const rotated = await vault.admin('POST', `transit/keys/${KEY}/rotate`);
          if (rotated.status !== 200) throw new Error(`rotate: HTTP ${rotated.status}`);
          return latest();
        },
        // Transit's only destruction: allow deletion, then delete.
        async purgeKey() {
          await vault.admin('POST', `transit/keys/${KEY}/config`, { deletion_allowed: true });
          const deleted = await vault.admin('DELETE', `transit/keys/${KEY}`);
          if (deleted.status !== 204) throw new Error(`delete: HTTP ${deleted.status}`);
        },
      },
      async reset() {
        vault.throttle(false);
        vault.slow(0);
        await vault.unreachable(false);
        vault.acl.writePolicy('keystrata', policy);
      },
      async teardown() {
        await vault.close();
      },
    };
  },
});
