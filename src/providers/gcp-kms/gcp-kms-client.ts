import { AsyncLocalStorage } from 'node:async_hooks';
import type { KeyManagementServiceClient, protos } from '@google-cloud/kms';
import type { GcpKmsSettings } from './gcp-kms-config.js';

/**
 * The Cloud KMS client: the official @google-cloud/kms KeyManagementServiceClient over its REST
 * transport (`fallback: true`: HTTP/1.1 + JSON, no gRPC native module), authenticated by
 * google-auth-library (gax's own copy, given the key through the client's `credentials` option).
 * The SDK is imported on first use: keystrata does not load it, nor its protobuf descriptors,
 * unless a gcp-kms CMK is used.
 */

export type EncryptRequest = protos.google.cloud.kms.v1.IEncryptRequest;
export type EncryptResponse = protos.google.cloud.kms.v1.IEncryptResponse;
export type DecryptRequest = protos.google.cloud.kms.v1.IDecryptRequest;
export type DecryptResponse = protos.google.cloud.kms.v1.IDecryptResponse;
export type CryptoKey = protos.google.cloud.kms.v1.ICryptoKey;

/** The three calls the provider makes: a minimal view of KeyManagementServiceClient. */
export interface KmsApi {
  encrypt(request: EncryptRequest): Promise<EncryptResponse>;
  decrypt(request: DecryptRequest): Promise<DecryptResponse>;
  getCryptoKey(name: string): Promise<CryptoKey>;
  close(): Promise<void>;
}

/** Builds a KmsApi for a config. Injected, so the provider can be exercised without the SDK. */
export type KmsApiSupplier = (settings: GcpKmsSettings) => Promise<KmsApi>;

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

/**
 * The abort signal of the provider call in progress. The generated client methods take no
 * AbortSignal (gax call options have none, and the promise they return has lost gax's cancel()),
 * but every request it makes goes through the auth client's HTTP transport (gaxios). An interceptor
 * there reads the signal of the call that caused the request — async context follows the request
 * through gax's promise chain — so a call abandoned at the deadline also closes its HTTP request.
 */
const callSignal = new AsyncLocalStorage<AbortSignal>();

export function runWithSignal<T>(signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
  return signal ? callSignal.run(signal, run) : run();
}

/** Aborts each HTTP request of `client` with the signal of the provider call that made it. */
async function abandonOnAbort(client: KeyManagementServiceClient): Promise<void> {
  const authClient = await client.auth.getClient();
  authClient.transporter.interceptors.request.add({
    resolved: async (config) => {
      const signal = callSignal.getStore();
      if (signal) config.signal = config.signal ? AbortSignal.any([config.signal, signal]) : signal;
      return config;
    },
  });
}

/** The production supplier: the official client, REST transport. */
export const connectCloudKms: KmsApiSupplier = async (settings) => {
  const { KeyManagementServiceClient } = await import('@google-cloud/kms');
  const { endpoint, serviceAccount } = settings;
  // With a service-account key, google-auth-library signs a self-signed JWT per hour (the client
  // sets useJWTAccessWithScope: no token endpoint is called). Without one, application default
  // credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, or the metadata server.
  const client = new KeyManagementServiceClient({
    fallback: true,
    scopes: [CLOUD_PLATFORM],
    ...(serviceAccount && { credentials: { ...serviceAccount } }),
    ...(endpoint && { apiEndpoint: endpoint.host, port: endpoint.port, protocol: endpoint.protocol }),
  });
  try {
    // Resolves the credentials (for ADC this may ask the metadata server): first call, not open().
    await abandonOnAbort(client);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw error;
  }
  return {
    encrypt: async (request) => (await client.encrypt(request))[0],
    decrypt: async (request) => (await client.decrypt(request))[0],
    getCryptoKey: async (name) => (await client.getCryptoKey({ name }))[0],
    close: () => client.close(),
  };
};
