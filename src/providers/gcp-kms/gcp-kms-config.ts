import { createPrivateKey } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';

/**
 * The gcp-kms CMK config: which Cloud KMS key, where to reach Cloud KMS, and as whom.
 *
 * Only `service_account` key files are accepted as credentials. Other credential JSON types that
 * google-auth-library understands (external_account, impersonated_service_account,
 * authorized_user) name token endpoints and credential sources (local files, URLs, executables) —
 * from a tenant-supplied config that would let one customer make keystrata read its files or call
 * its internal network. A service-account key only ever signs a JWT locally.
 */

export const GCP_KMS_PROVIDER = 'gcp-kms';

const ServiceAccountKey = Type.Object(
  {
    type: Type.Literal('service_account', { description: 'Always "service_account".' }),
    project_id: Type.Optional(Type.String({ maxLength: 100 })),
    private_key_id: Type.String({ minLength: 1, maxLength: 100, description: 'Id of the key (the JWT `kid`).' }),
    private_key: Type.String({ minLength: 100, maxLength: 8000, pattern: '-----BEGIN PRIVATE KEY-----', description: 'The RSA private key, PKCS#8 PEM.' }),
    client_email: Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254, description: 'The service account, e.g. keystrata@my-project.iam.gserviceaccount.com.' }),
    client_id: Type.Optional(Type.String({ maxLength: 100 })),
    auth_uri: Type.Optional(Type.String({ maxLength: 500 })),
    token_uri: Type.Optional(Type.String({ maxLength: 500 })),
    auth_provider_x509_cert_url: Type.Optional(Type.String({ maxLength: 500 })),
    client_x509_cert_url: Type.Optional(Type.String({ maxLength: 500 })),
    universe_domain: Type.Optional(Type.Literal('googleapis.com')),
  },
  { additionalProperties: false, description: 'A service-account JSON key file, as downloaded from IAM.' },
);

export type ServiceAccountKey = Static<typeof ServiceAccountKey>;

export const GcpKmsConfig = Type.Object(
  {
    keyName: Type.String({
      pattern: '^projects/[a-z0-9.:-]{1,100}/locations/[a-z0-9-]{1,63}/keyRings/[A-Za-z0-9_-]{1,63}/cryptoKeys/[A-Za-z0-9_-]{1,63}$',
      description: 'The symmetric (ENCRYPT_DECRYPT) CryptoKey: projects/P/locations/L/keyRings/R/cryptoKeys/K. Not a key version: Cloud KMS encrypts with the primary version and picks the version from the ciphertext on decrypt.',
    }),
    apiEndpoint: Type.Optional(
      Type.String({
        pattern: '^(https?://)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$',
        description: 'Cloud KMS host, default cloudkms.googleapis.com; e.g. a regional endpoint cloudkms.europe-west1.rep.googleapis.com or a Private Service Connect name *.p.googleapis.com. Must be a googleapis.com host (HTTPS).',
      }),
    ),
    credentials: Type.Optional(
      Type.Union([Type.String({ minLength: 2, maxLength: 10_000 }), ServiceAccountKey], {
        description: "A service-account JSON key (object, or its text). Secret: stored sealed, never shown. Without it keystrata uses its own application default credentials (the key's IAM policy must then grant keystrata's service account).",
      }),
    ),
  },
  { additionalProperties: false },
);

/** How the provider reaches Cloud KMS (from apiEndpoint, after the endpoint policy). */
export interface KmsEndpoint {
  readonly host: string;
  readonly port: number;
  readonly protocol: 'https' | 'http';
}

export interface GcpKmsSettings {
  readonly keyName: string;
  readonly endpoint: KmsEndpoint | null;
  /** null: application default credentials. */
  readonly serviceAccount: ServiceAccountKey | null;
}

export interface GcpKmsPolicy {
  /** Accept `http://` and any host in apiEndpoint. Only for tests against a local emulator. */
  readonly insecureTestEndpoints?: boolean;
  /** Allow configs without credentials to use keystrata's own application default credentials. */
  readonly applicationDefaultCredentials?: boolean;
}

function invalid(field: string, why: string): KeystrataError {
  return new KeystrataError('configuration_invalid', `The ${GCP_KMS_PROVIDER} CMK config is invalid at "${field}" (${why}).`, { field });
}

function parseEndpoint(value: string, policy: GcpKmsPolicy): KmsEndpoint {
  const url = new URL(/^https?:\/\//.test(value) ? value : `https://${value}`);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  const port = url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port);
  /* Precondition: outside tests, only Google's API hosts over HTTPS. Requests carry a bearer token
     (with application default credentials, keystrata's own): a tenant must not be able to send it
     to a host of its choosing, or use keystrata to probe its internal network. */
  if (!policy.insecureTestEndpoints && (protocol !== 'https' || !url.hostname.endsWith('.googleapis.com'))) {
    throw invalid('apiEndpoint', 'must be an HTTPS *.googleapis.com host');
  }
  return { host: url.hostname, port, protocol };
}

function parseCredentials(value: string | ServiceAccountKey): ServiceAccountKey {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw invalid('credentials', 'not JSON');
    }
  }
  // The message never echoes the value: it is a private key.
  if (!Value.Check(ServiceAccountKey, parsed)) throw invalid('credentials', 'not a service_account JSON key');
  try {
    createPrivateKey(parsed.private_key);
  } catch {
    throw invalid('credentials.private_key', 'not a readable PEM private key');
  }
  return parsed;
}

/** Validates a config (schema, then what a schema cannot say), without touching the network. */
export function parseGcpKmsConfig(config: unknown, policy: GcpKmsPolicy): GcpKmsSettings {
  const checked = checkConfig(GcpKmsConfig, config, GCP_KMS_PROVIDER);
  const serviceAccount = checked.credentials === undefined ? null : parseCredentials(checked.credentials);
  if (!serviceAccount && policy.applicationDefaultCredentials === false) {
    throw invalid('credentials', 'required: application default credentials are disabled on this deployment');
  }
  return {
    keyName: checked.keyName,
    endpoint: checked.apiEndpoint === undefined ? null : parseEndpoint(checked.apiEndpoint, policy),
    serviceAccount,
  };
}
