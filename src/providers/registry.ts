import { KeystrataError } from '../errors.js';
import type { CmkRecord } from '../store/store.js';
import type { CmkProvider, CmkProviderFactory } from './provider.js';

/**
 * Looks providers up by name and keeps one open provider per CMK. Call sites never switch on the
 * provider type: they ask the registry for the CMK's provider and call the interface.
 */
/** Told about every provider call: for metrics (counts, outcome, latency). */
export type ProviderCallObserver = (provider: string, operation: 'wrap' | 'unwrap', outcome: 'ok' | 'error', seconds: number) => void;

/** The provider with every wrap/unwrap reported to `observe`. */
function observed(provider: CmkProvider, observe: ProviderCallObserver): CmkProvider {
  const timed = async <T>(operation: 'wrap' | 'unwrap', call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await call();
      observe(provider.name, operation, 'ok', (performance.now() - started) / 1000);
      return result;
    } catch (error) {
      observe(provider.name, operation, 'error', (performance.now() - started) / 1000);
      throw error;
    }
  };
  return {
    name: provider.name,
    wrap: (key, aad) => timed('wrap', () => provider.wrap(key, aad)),
    unwrap: (ciphertext, aad, keyVersion) => timed('unwrap', () => provider.unwrap(ciphertext, aad, keyVersion)),
    close: () => provider.close(),
  };
}

export class ProviderRegistry {
  private readonly factories = new Map<string, CmkProviderFactory>();
  private readonly open = new Map<string, CmkProvider>();

  constructor(
    factories: readonly CmkProviderFactory[],
    private readonly observe?: ProviderCallObserver,
  ) {
    for (const factory of factories) this.factories.set(factory.name, factory);
  }

  forCmk(cmk: CmkRecord): CmkProvider {
    const existing = this.open.get(cmk.id);
    if (existing) return existing;
    const factory = this.factories.get(cmk.provider);
    if (!factory) {
      throw new KeystrataError('configuration_invalid', `No CMK provider named "${cmk.provider}" is available.`);
    }
    const opened = factory.open(cmk.config, { cmkId: cmk.id, environmentId: cmk.environmentId });
    const provider = this.observe ? observed(opened, this.observe) : opened;
    this.open.set(cmk.id, provider);
    return provider;
  }

  async close(): Promise<void> {
    const providers = [...this.open.values()];
    this.open.clear();
    await Promise.all(providers.map((provider) => provider.close()));
  }
}
