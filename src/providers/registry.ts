import { KeystrataError } from '../errors.js';
import type { CmkRecord } from '../store/store.js';
import type { CmkProvider, CmkProviderFactory } from './provider.js';

/**
 * Looks providers up by name and keeps one open provider per CMK. Call sites never switch on the
 * provider type: they ask the registry for the CMK's provider and call the interface.
 */
export class ProviderRegistry {
  private readonly factories = new Map<string, CmkProviderFactory>();
  private readonly open = new Map<string, CmkProvider>();

  constructor(factories: readonly CmkProviderFactory[]) {
    for (const factory of factories) this.factories.set(factory.name, factory);
  }

  forCmk(cmk: CmkRecord): CmkProvider {
    const existing = this.open.get(cmk.id);
    if (existing) return existing;
    const factory = this.factories.get(cmk.provider);
    if (!factory) {
      throw new KeystrataError('configuration_invalid', `No CMK provider named "${cmk.provider}" is available.`);
    }
    const provider = factory.open(cmk.config, { cmkId: cmk.id, environmentId: cmk.environmentId });
    this.open.set(cmk.id, provider);
    return provider;
  }

  async close(): Promise<void> {
    const providers = [...this.open.values()];
    this.open.clear();
    await Promise.all(providers.map((provider) => provider.close()));
  }
}
