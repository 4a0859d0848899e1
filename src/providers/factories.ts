import { AWS_KMS_PROVIDER, AWS_KMS_SECRET_FIELDS, AwsKmsConfigSchema, parseAwsKmsConfig } from './aws-kms/aws-kms-config.js';
import { AZURE_KEYVAULT_PROVIDER, AzureKeyVaultConfig, resolveConfig as resolveAzureConfig } from './azure-keyvault/azure-keyvault-config.js';
import { gcpKmsProviderFactory } from './gcp-kms/gcp-kms-provider.js';
import { kmipProviderFactory } from './kmip/kmip-provider.js';
import { lazyProviderFactory } from './lazy-provider.js';
import { pkcs11ProviderFactory } from './pkcs11/pkcs11-provider.js';
import type { CmkProviderFactory } from './provider.js';
import { uploadedProviderFactory } from './uploaded/uploaded-provider.js';
import { vaultTransitProviderFactory } from './vault-transit/vault-transit-provider.js';

/**
 * Every provider keystrata can use, by name. The platform factory needs the root-derived wrap key,
 * so the composition root passes it in. The AWS and Azure SDKs are loaded on first use (Google's
 * provider loads its SDK lazily itself): a keystrata whose customers use none of them never loads
 * them, and start-up (and every test that opens keystrata) stays fast.
 */
export function providerFactories(platform: CmkProviderFactory, options: { readonly pkcs11Modules?: readonly string[] } = {}): CmkProviderFactory[] {
  return [
    platform,
    uploadedProviderFactory,
    // Only the PKCS#11 libraries the operator listed can ever be loaded (native code in our process).
    pkcs11ProviderFactory({ allowedModules: options.pkcs11Modules ?? [] }),
    kmipProviderFactory,
    lazyProviderFactory({
      name: AWS_KMS_PROVIDER,
      configSchema: AwsKmsConfigSchema,
      secretFields: AWS_KMS_SECRET_FIELDS,
      validate: (config) => void parseAwsKmsConfig(config),
      load: async () => (await import('./aws-kms/aws-kms-provider.js')).awsKmsProviderFactory,
    }),
    gcpKmsProviderFactory,
    lazyProviderFactory({
      name: AZURE_KEYVAULT_PROVIDER,
      configSchema: AzureKeyVaultConfig,
      secretFields: ['clientSecret'],
      validate: (config) => void resolveAzureConfig(config, {}),
      load: async () => (await import('./azure-keyvault/azure-keyvault-provider.js')).azureKeyVaultProviderFactory,
    }),
    vaultTransitProviderFactory,
  ];
}
