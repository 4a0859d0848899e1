import { KeystrataError } from '../errors.js';
import { LruMap } from '../service/lru-map.js';
import type { CmkRecord } from '../store/store.js';
import { openSecrets } from './config-secrets.js';
import { CmkProviderError, isCmkProviderError, type CallOptions, type CmkProvider, type CmkProviderFactory, type ProviderIdentity } from './provider.js';

/** Told about every provider call: for metrics (counts, outcome, latency). */
export type ProviderCallObserver = (provider: string, operation: 'wrap' | 'unwrap' | 'describe', outcome: string, seconds: number) => void;

export interface RegistryOptions {
  /** Deadline of every provider call: a KMS that does not answer fails fast (timeout) instead of hanging requests. */
  readonly callTimeoutMs: number;
  /** Key that seals the secret fields of stored configs (root-derived). */
  readonly secretsKey: Buffer;
  readonly observe?: ProviderCallObserver;
  /** Most providers kept open (least recently used ones are closed). */
  readonly maxOpen?: number;
}

/**
 * Looks providers up by name and keeps one open provider per CMK. Call sites never switch on the
 * provider type: they ask the registry for the CMK's provider and call the interface. Every call
 * goes through `guarded`: a deadline, metrics, and only CmkProviderErrors coming out.
 */
export class ProviderRegistry {
  private readonly factories = new Map<string, CmkProviderFactory>();
  private readonly open: LruMap<string, CmkProvider>;

  constructor(
    factories: readonly CmkProviderFactory[],
    private readonly options: RegistryOptions,
  ) {
    for (const factory of factories) this.factories.set(factory.name, factory);
    this.open = new LruMap(options.maxOpen ?? 1000, (provider) => {
      provider.close().catch(() => undefined);
    });
  }

  /** The factory of a provider name, or undefined. */
  factory(name: string): CmkProviderFactory | undefined {
    return this.factories.get(name);
  }

  get names(): readonly string[] {
    return [...this.factories.keys()];
  }

  /** The open provider of a stored CMK (opened on first use, secrets unsealed only then). */
  forCmk(cmk: Pick<CmkRecord, 'id' | 'provider' | 'config' | 'environmentId'>): CmkProvider {
    const existing = this.open.get(cmk.id);
    if (existing) return existing;
    const provider = this.openConfig(cmk.provider, cmk.config, { cmkId: cmk.id, environmentId: cmk.environmentId }, true);
    this.open.set(cmk.id, provider);
    return provider;
  }

  /**
   * A provider for a config that is not stored yet (test-and-save), with the same deadline and
   * metrics. The caller closes it. `sealed` says whether secret fields are sealed (stored) or clear.
   */
  openConfig(name: string, config: Readonly<Record<string, unknown>>, identity: ProviderIdentity, sealed = false): CmkProvider {
    const factory = this.factories.get(name);
    if (!factory) throw new KeystrataError('configuration_invalid', `No CMK provider named "${name}" is available.`);
    const clear = sealed ? openSecrets(config, factory.secretFields, this.options.secretsKey, identity) : config;
    return this.guarded(factory.open(clear, identity));
  }

  /** Forget (and close) the open provider of a CMK, e.g. after its config changed. */
  evict(cmkId: string): void {
    this.open.delete(cmkId);
  }

  async close(): Promise<void> {
    const providers = [...this.open.entries()].map(([, provider]) => provider);
    this.open.clear();
    await Promise.all(providers.map((provider) => provider.close().catch(() => undefined)));
  }

  private guarded(provider: CmkProvider): CmkProvider {
    const { callTimeoutMs, observe } = this.options;
    const call = async <T>(operation: 'wrap' | 'unwrap' | 'describe', run: (options: CallOptions) => Promise<T>): Promise<T> => {
      const started = performance.now();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new CmkProviderError('timeout', `${provider.name} did not answer ${operation} within ${callTimeoutMs} ms`));
        }, callTimeoutMs);
      });
      try {
        const result = await Promise.race([run({ signal: controller.signal }), deadline]);
        observe?.(provider.name, operation, 'ok', (performance.now() - started) / 1000);
        return result;
      } catch (error) {
        const failure = isCmkProviderError(error) || error instanceof KeystrataError ? error : new CmkProviderError('unreachable', `${provider.name} ${operation} failed (${error instanceof Error ? error.name : typeof error})`, { cause: error });
        observe?.(provider.name, operation, isCmkProviderError(failure) ? failure.reason : 'error', (performance.now() - started) / 1000);
        throw failure;
      } finally {
        clearTimeout(timer);
      }
    };
    return {
      name: provider.name,
      wrap: (key, aad) => call('wrap', (o) => provider.wrap(key, aad, o)),
      unwrap: (ciphertext, aad, keyVersion) => call('unwrap', (o) => provider.unwrap(ciphertext, aad, keyVersion, o)),
      describe: () => call('describe', (o) => provider.describe(o)),
      close: () => provider.close(),
    };
  }
}
