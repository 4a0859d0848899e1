import type { CmkProviderFactory } from './provider.js';
import { uploadedProviderFactory } from './uploaded/uploaded-provider.js';

/**
 * Every provider keystrata can use, by name. The platform factory needs the root-derived wrap key,
 * so the composition root passes it in; the rest are stateless factories.
 */
export function providerFactories(platform: CmkProviderFactory): CmkProviderFactory[] {
  return [platform, uploadedProviderFactory];
}
