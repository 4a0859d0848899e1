import { randomBytes, randomUUID } from 'node:crypto';
import { HttpsListener } from './https-listener.js';
import { IdentityEmulator } from './identity-emulator.js';
import { KeyVaultEmulator, VAULT_RESOURCE } from './key-vault-emulator.js';
import { makeSelfSignedCert } from './self-signed-cert.js';

/**
 * Azure Key Vault for tests: an Entra ID token endpoint and a Key Vault data plane, each on its own
 * HTTPS listener on 127.0.0.1 (two hosts, as in Azure), sharing one throw-away certificate. One
 * application (client id + secret) is registered in one tenant.
 *
 * `start()` and `close()` bracket a suite; the faults (slow, unreachable, throttled, denied, key
 * states) are switched on the instance.
 */
export class AzureKeyVaultEmulator {
  readonly tenantId = randomUUID();
  readonly clientId = randomUUID();
  readonly clientSecret = `${randomBytes(3).toString('hex')}~${randomBytes(24).toString('base64url')}`;
  readonly identity = new IdentityEmulator(this.tenantId, [VAULT_RESOURCE]);
  readonly vault: KeyVaultEmulator;
  readonly ca: string;
  private readonly identityListener: HttpsListener;
  private readonly vaultListener: HttpsListener;

  private constructor() {
    const tls = makeSelfSignedCert();
    this.ca = tls.cert;
    this.identityListener = new HttpsListener(tls, (call) => this.identity.handle(call, this.identityListener.url));
    this.vaultListener = new HttpsListener(tls, (call) => this.vault.handle(call));
    this.vault = new KeyVaultEmulator(this.identity, { vault: () => this.vaultListener.url, authority: () => this.identityListener.url });
    this.identity.registerApp(this.clientId, this.clientSecret);
  }

  static async start(): Promise<AzureKeyVaultEmulator> {
    const emulator = new AzureKeyVaultEmulator();
    await emulator.identityListener.start();
    await emulator.vaultListener.start();
    return emulator;
  }

  /** `https://127.0.0.1:<port>`: the vault URL keys live under. */
  get vaultUrl(): string {
    return this.vaultListener.url;
  }

  /** `https://127.0.0.1:<port>`: what `authorityHost` points at. */
  get authorityHost(): string {
    return this.identityListener.url;
  }

  keyId(name: string, version?: string): string {
    return `${this.vaultUrl}/keys/${name}${version ? `/${version}` : ''}`;
  }

  /** Every HTTP request either host has received. */
  requests(): number {
    return this.identityListener.requests + this.vaultListener.requests;
  }

  /** Answer every request `ms` late (0 = on time). */
  slow(ms: number): void {
    this.identityListener.delayMs = ms;
    this.vaultListener.delayMs = ms;
  }

  /** Take both hosts off the network (connections refused), or bring them back on the same ports. */
  async unreachable(on: boolean): Promise<void> {
    if (on) await Promise.all([this.identityListener.stop(), this.vaultListener.stop()]);
    else await Promise.all([this.identityListener.start(), this.vaultListener.start()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.identityListener.stop(), this.vaultListener.stop()]);
  }
}
