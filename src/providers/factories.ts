import { awsKmsProviderFactory } from './aws-kms/aws-kms-provider.js';
import { azureKeyVaultProviderFactory } from './azure-keyvault/azure-keyvault-provider.js';
import { gcpKmsProviderFactory } from './gcp-kms/gcp-kms-provider.js';
import { kmipProviderFactory } from './kmip/kmip-provider.js';
import type { CmkProviderFactory } from './provider.js';
import { uploadedProviderFactory } from './uploaded/uploaded-provider.js';
import { vaultTransitProviderFactory } from './vault-transit/vault-transit-provider.js';

/**
 * Every provider keystrata can use, by name. The platform factory needs the root-derived wrap key,
 * so the composition root passes it in; the rest are stateless factories. Their SDKs are loaded
 * with them, but nothing connects anywhere until a CMK of that provider is used.
 */
export function providerFactories(platform: CmkProviderFactory): CmkProviderFactory[] {
  return [
    platform,
    uploadedProviderFactory,
    kmipProviderFactory,
    awsKmsProviderFactory,
    gcpKmsProviderFactory,
    azureKeyVaultProviderFactory,
    vaultTransitProviderFactory,
  ];
}
