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

/**
 * HTTPS anywhere; plain HTTP only to the loopback interface (a local proxy or test double). The
 * Encrypt request carries the key being wrapped: it must never cross a network unencrypted.
 */
const ENDPOINT_PATTERN = '^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?|http://(127\\.0\\.0\\.1|localhost|\\[::1\\])(:[0-9]{1,5})?)/?$';

export const AwsKmsConfigSchema = Type.Object(
  {
    region: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$', description: 'AWS Region of the key, e.g. "eu-west-1".' }),
    keyId: Type.String({
      pattern: KEY_ID_PATTERN,
      maxLength: 2048,
      description:
        'The KMS key: key ARN (recommended), key id, alias name ("alias/…") or alias ARN. A symmetric encryption key (SYMMETRIC_DEFAULT). With an alias, keystrata follows whatever key the alias points to.',
    }),
    endpoint: Type.Optional(
      Type.String({
        pattern: ENDPOINT_PATTERN,
        maxLength: 512,
        description: 'KMS endpoint URL, e.g. a VPC interface endpoint or FIPS endpoint ("https://…"). Default: the public endpoint of the region.',
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

/** The config, checked: the schema, then the rules a schema cannot say. */
export function parseAwsKmsConfig(config: unknown): AwsKmsConfig {
  const parsed = checkConfig(AwsKmsConfigSchema, config, AWS_KMS_PROVIDER);
  if ((parsed.accessKeyId === undefined) !== (parsed.secretAccessKey === undefined)) {
    throw invalid(parsed.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey', 'accessKeyId and secretAccessKey go together');
  }
  if (parsed.sessionToken !== undefined && parsed.accessKeyId === undefined) throw invalid('sessionToken', 'a session token needs accessKeyId and secretAccessKey');
  const arnRegion = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(parsed.keyId)?.[1];
  if (arnRegion !== undefined && arnRegion !== parsed.region) throw invalid('keyId', `the ARN is in ${arnRegion}, not in region ${parsed.region}`);
  return parsed;
}

/**
 * Whether keyId names an alias. An alias can be removed or re-pointed without touching the key, so
 * "not found" through an alias does not prove the key itself is gone.
 */
export function namesAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:aws[a-z-]*:kms:[^:]+:[0-9]{12}:alias\//.test(keyId);
}
