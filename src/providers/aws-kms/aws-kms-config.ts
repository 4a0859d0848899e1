import { Type, type Static } from '@sinclair/typebox';
import { KeystrataError } from '../../errors.js';
import { checkConfig } from '../provider-config.js';

/**
 * The config a customer gives for an AWS KMS CMK. Only `region` and `keyId` are required: without
 * `accessKeyId`/`secretAccessKey` the AWS SDK's default credential chain applies (environment,
 * shared config files, web identity / EKS pod identity, ECS task role, EC2 instance role) — that is
 * keystrata's own identity, which the customer then grants use of their key (see docs/byok.md).
 */

export const AWS_KMS_PROVIDER = 'aws-kms';

/** Key id, key ARN, alias name or alias ARN; also multi-Region key ids (mrk-…). */
const KEY_ID_PATTERN =
  '^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)|alias/[A-Za-z0-9/_-]+|mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$';

/** The form of an endpoint; where it may point is checked in parseAwsKmsConfig. */
const ENDPOINT_PATTERN = '^https?://([A-Za-z0-9.-]+|\\[::1\\])(:[0-9]{1,5})?/?$';

export const AwsKmsConfigSchema = Type.Object(
  {
    region: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$', description: 'AWS Region of the key, e.g. "eu-west-1".' }),
    keyId: Type.String({
      pattern: KEY_ID_PATTERN,
      maxLength: 2048,
      description:
        'The KMS key: key ARN (recommended), key id, alias name ("alias/…") or alias ARN. A symmetric encryption key (SYMMETRIC_DEFAULT). Through an alias, new wraps use the key it points to now; keys wrapped under its earlier key keep unwrapping with that key while it exists.',
    }),
    endpoint: Type.Optional(
      Type.String({
        pattern: ENDPOINT_PATTERN,
        maxLength: 512,
        description:
          'KMS endpoint of the key\'s region when not the default (https://kms.<region>.amazonaws.com): the FIPS endpoint (https://kms-fips.<region>.amazonaws.com), dual-stack (https://kms.<region>.api.aws) or a VPC interface endpoint (https://vpce-….kms.<region>.vpce.amazonaws.com).',
      }),
    ),
    accessKeyId: Type.Optional(
      Type.String({ pattern: '^[A-Z0-9]{16,128}$', description: 'Access key id of an IAM user or temporary credentials. Omit (with secretAccessKey) to use keystrata’s own AWS identity.' }),
    ),
    secretAccessKey: Type.Optional(Type.String({ minLength: 16, maxLength: 256, description: 'Secret access key belonging to accessKeyId. Secret: stored sealed, never shown.' })),
    sessionToken: Type.Optional(
      Type.String({ minLength: 16, maxLength: 16384, description: 'Session token of temporary credentials (they expire: keystrata then reports credentials_rejected). Secret.' }),
    ),
  },
  { additionalProperties: false },
);

export type AwsKmsConfig = Static<typeof AwsKmsConfigSchema>;

export const AWS_KMS_SECRET_FIELDS = ['secretAccessKey', 'sessionToken'] as const;

function invalid(field: string, why: string): KeystrataError {
  return new KeystrataError('configuration_invalid', `The ${AWS_KMS_PROVIDER} CMK config is invalid at "${field}" (${why}).`, { field });
}

/** Set by whoever deploys keystrata (never by a customer). */
export interface AwsKmsDeployment {
  /**
   * Further endpoint hosts a config may name: "host:port" or "host" exactly, or a suffix starting
   * with "." — a KMS proxy of the operator's, or the emulator in tests. Plain http is accepted only
   * for such a host on the loopback interface.
   */
  readonly extraEndpointHosts?: readonly string[];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** AWS's own KMS endpoints of `region`: standard, FIPS, dual-stack, China, and VPC interface endpoints. */
function isAwsKmsHost(hostname: string, region: string): boolean {
  const r = region.replace(/[^a-z0-9-]/g, '');
  return new RegExp(`^(kms(-fips)?\\.${r}\\.(amazonaws\\.com(\\.cn)?|api\\.aws)|vpce-[a-z0-9-]+\\.kms(-fips)?\\.${r}\\.vpce\\.amazonaws\\.com(\\.cn)?)$`).test(hostname);
}

/**
 * The endpoint is a URL a tenant chooses, and keystrata connects to it from inside its network —
 * sending it the EK to wrap. So it must be one of AWS's KMS endpoints for the key's region, over
 * HTTPS, unless the operator allowed the host; then plain http only to loopback.
 */
function checkEndpoint(endpoint: string, region: string, deployment: AwsKmsDeployment): void {
  const url = new URL(endpoint);
  const hostname = url.hostname.toLowerCase();
  const host = url.host.toLowerCase();
  const extra = deployment.extraEndpointHosts ?? [];
  const operatorAllowed = extra.some((entry) => (entry.startsWith('.') ? hostname.endsWith(entry) : host === entry || hostname === entry));
  if (!operatorAllowed && !(isAwsKmsHost(hostname, region) && (url.port === '' || url.port === '443'))) {
    throw invalid('endpoint', `not an AWS KMS endpoint of ${region} (kms.${region}.amazonaws.com, kms-fips…, kms.${region}.api.aws, vpce-….kms.${region}.vpce.amazonaws.com)`);
  }
  if (url.protocol === 'http:' && !(operatorAllowed && LOOPBACK.has(hostname))) throw invalid('endpoint', 'https is required: the key to wrap travels in the request');
}

/** The config, checked: the schema, then the rules a schema cannot say. */
export function parseAwsKmsConfig(config: unknown, deployment: AwsKmsDeployment = {}): AwsKmsConfig {
  const parsed = checkConfig(AwsKmsConfigSchema, config, AWS_KMS_PROVIDER);
  if ((parsed.accessKeyId === undefined) !== (parsed.secretAccessKey === undefined)) {
    throw invalid(parsed.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey', 'accessKeyId and secretAccessKey go together');
  }
  if (parsed.sessionToken !== undefined && parsed.accessKeyId === undefined) throw invalid('sessionToken', 'a session token needs accessKeyId and secretAccessKey');
  const arnRegion = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(parsed.keyId)?.[1];
  if (arnRegion !== undefined && arnRegion !== parsed.region) throw invalid('keyId', `the ARN is in ${arnRegion}, not in region ${parsed.region}`);
  if (parsed.endpoint !== undefined) checkEndpoint(parsed.endpoint, parsed.region, deployment);
  return parsed;
}

/**
 * Whether keyId names an alias. An alias can be removed or re-pointed without touching the key, so
 * "not found" through an alias does not prove the key itself is gone.
 */
export function namesAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:aws[a-z-]*:kms:[^:]+:[0-9]{12}:alias\//.test(keyId);
}
