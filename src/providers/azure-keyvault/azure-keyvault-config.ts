import { Type, type Static } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';

/**
 * The customer's config of an Azure Key Vault (or Managed HSM) CMK, and where it may point.
 *
 * keyId and authorityHost are URLs a tenant chooses, and keystrata connects to them from inside its
 * network: they are limited to Azure's own Key Vault / Managed HSM and Entra ID hosts (public cloud,
 * Azure China, Azure US Government), so a CMK config cannot make keystrata call an internal
 * address. An operator can allow more hosts (Azure Stack Hub, an emulator in tests) through the
 * factory's deployment options, which no customer can set.
 */

export const AZURE_KEYVAULT_PROVIDER = 'azure-keyvault';

const KEY_ID = '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/keys/[0-9A-Za-z-]{1,127}(/[0-9A-Za-z]{1,64})?/?$';
const GUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const AzureKeyVaultConfig = Type.Object(
  {
    keyId: Type.String({
      pattern: KEY_ID,
      description:
        'Key identifier: https://<vault>.vault.azure.net/keys/<name> (or …/keys/<name>/<version> to pin one version; Managed HSM: https://<hsm>.managedhsm.azure.net/keys/<name>). Without a version, new wraps use the current version, so rotation needs no config change.',
    }),
    tenantId: Type.String({ pattern: '^[0-9A-Za-z][0-9A-Za-z.-]{0,253}$', description: 'Directory (tenant) ID of the Entra ID tenant the vault trusts (GUID, or its verified domain).' }),
    clientId: Type.String({ pattern: GUID, description: 'Application (client) ID of the app registration / service principal keystrata signs in as.' }),
    clientSecret: Type.String({ minLength: 1, maxLength: 1024, description: 'A client secret of that app (the secret value, not its ID). Stored sealed; never shown again.' }),
    authorityHost: Type.Optional(
      Type.String({
        pattern: '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$',
        description:
          "Entra ID endpoint to get tokens from. Default: the vault's cloud (https://login.microsoftonline.com, https://login.chinacloudapi.cn for *.azure.cn, https://login.microsoftonline.us for *.usgovcloudapi.net).",
      }),
    ),
  },
  { additionalProperties: false },
);
export type AzureKeyVaultConfig = Static<typeof AzureKeyVaultConfig>;

/** Set by whoever deploys keystrata (never by a customer): hosts beyond Azure's clouds, and TLS trust. */
export interface AzureKeyVaultDeployment {
  /** Further vault hosts keyId may name: "host:port" exactly, or a suffix starting with "." */
  readonly extraVaultHosts?: readonly string[];
  /** Further Entra ID hosts authorityHost may name, same form. */
  readonly extraAuthorityHosts?: readonly string[];
  /** PEM CA certificate(s) trusted for these connections instead of the public CAs. */
  readonly ca?: string;
  /**
   * Key Vault answers a first, unauthenticated request with the resource to get a token for; the
   * client checks that the vault host lies under that resource's domain (so a look-alike host cannot
   * ask for a token meant for another service). Only a host outside Azure's domains (an emulator
   * on 127.0.0.1) needs this check off.
   */
  readonly disableChallengeResourceVerification?: boolean;
}

interface Cloud {
  readonly vaultSuffixes: readonly string[];
  readonly authorityHost: string;
}

const CLOUDS: readonly Cloud[] = [
  { vaultSuffixes: ['.vault.azure.net', '.managedhsm.azure.net'], authorityHost: 'https://login.microsoftonline.com' },
  { vaultSuffixes: ['.vault.azure.cn', '.managedhsm.azure.cn'], authorityHost: 'https://login.chinacloudapi.cn' },
  { vaultSuffixes: ['.vault.usgovcloudapi.net', '.managedhsm.usgovcloudapi.net'], authorityHost: 'https://login.microsoftonline.us' },
];

/** A config checked against the schema and the allowed hosts, split into what the clients need. */
export interface ResolvedConfig {
  /** https://host[:port] */
  readonly vaultUrl: string;
  readonly keyName: string;
  /** The version named in keyId, if the customer pinned one. */
  readonly pinnedVersion: string | undefined;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly authorityHost: string;
}

function matches(host: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => (entry.startsWith('.') ? host.endsWith(entry) : host === entry));
}

function invalid(field: string, message: string): KeystrataError {
  return new KeystrataError('configuration_invalid', `The ${AZURE_KEYVAULT_PROVIDER} CMK config is invalid at "${field}": ${message}`, { field });
}

export function resolveConfig(config: unknown, deployment: AzureKeyVaultDeployment): ResolvedConfig {
  const checked = checkConfig(AzureKeyVaultConfig, config, AZURE_KEYVAULT_PROVIDER);
  const url = new URL(checked.keyId);
  const host = url.host.toLowerCase();
  const cloud = CLOUDS.find((c) => matches(host, c.vaultSuffixes));
  if (!cloud && !matches(host, deployment.extraVaultHosts ?? [])) {
    throw invalid('keyId', 'the host must be an Azure Key Vault or Managed HSM host (*.vault.azure.net, *.managedhsm.azure.net, or their Azure China / US Government equivalents).');
  }
  const authority = checked.authorityHost ?? cloud?.authorityHost;
  if (authority === undefined) throw invalid('authorityHost', 'required for a vault outside the known Azure clouds.');
  const authorityUrl = new URL(authority);
  const knownAuthority = CLOUDS.some((c) => new URL(c.authorityHost).host === authorityUrl.host.toLowerCase());
  if (!knownAuthority && !matches(authorityUrl.host.toLowerCase(), deployment.extraAuthorityHosts ?? [])) {
    throw invalid('authorityHost', 'must be an Entra ID host (login.microsoftonline.com, login.chinacloudapi.cn, login.microsoftonline.us).');
  }
  const [, , name, version] = url.pathname.replace(/\/$/, '').split('/');
  return {
    vaultUrl: `https://${url.host}`,
    keyName: name!,
    pinnedVersion: version || undefined,
    tenantId: checked.tenantId,
    clientId: checked.clientId,
    clientSecret: checked.clientSecret,
    authorityHost: authorityUrl.origin,
  };
}
