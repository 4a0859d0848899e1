import type { TSchema } from '@sinclair/typebox';
import type { CallOptions, CmkDescription, CmkProvider, CmkProviderFactory, ProviderIdentity, WrapResult } from './provider.js';

/**
 * A factory whose implementation (and the cloud SDK it pulls in: ~0.3–0.5 s and tens of MB each)
 * is loaded on the first call of the first provider that needs it, not at start-up. The config is
 * still validated at open() by `validate`, which lives in the provider's SDK-free config module, so
 * a bad config fails exactly as early as with the eager factory.
 */
export interface LazyFactorySpec {
  readonly name: string;
  readonly configSchema: TSchema;
  readonly secretFields: readonly string[];
  /** Throws (configuration_invalid) for a config the real factory would refuse. */
  validate(config: Readonly<Record<string, unknown>>): void;
  load(): Promise<CmkProviderFactory>;
}

export function lazyProviderFactory(spec: LazyFactorySpec): CmkProviderFactory {
  let loading: Promise<CmkProviderFactory> | undefined;
  const load = (): Promise<CmkProviderFactory> => {
    loading ??= spec.load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };

  class LazyProvider implements CmkProvider {
    readonly name = spec.name;
    private opened: Promise<CmkProvider> | undefined;
    private closed = false;

    constructor(
      private readonly config: Readonly<Record<string, unknown>>,
      private readonly identity: ProviderIdentity,
    ) {}

    private provider(): Promise<CmkProvider> {
      if (this.closed) return Promise.reject(new Error(`${spec.name} provider is closed`));
      this.opened ??= load().then((factory) => factory.open(this.config, this.identity));
      return this.opened;
    }

    async wrap(key: Buffer, aad: Buffer, options?: CallOptions): Promise<WrapResult> {
      return (await this.provider()).wrap(key, aad, options);
    }

    async unwrap(ciphertext: Buffer, aad: Buffer, keyVersion: string | null, options?: CallOptions): Promise<Buffer> {
      return (await this.provider()).unwrap(ciphertext, aad, keyVersion, options);
    }

    async describe(options?: CallOptions): Promise<CmkDescription> {
      return (await this.provider()).describe(options);
    }

    async close(): Promise<void> {
      this.closed = true;
      const opened = this.opened;
      this.opened = undefined;
      if (opened) await (await opened.catch(() => undefined))?.close();
    }
  }

  return {
    name: spec.name,
    configSchema: spec.configSchema,
    secretFields: spec.secretFields,
    open(config, identity) {
      spec.validate(config);
      return new LazyProvider(config, identity);
    },
  };
}
