import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { KeystrataError } from '../errors.js';

/**
 * Checks a provider config against its schema. The API validates `PUT …/cmk` bodies with the same
 * schema first (with the field at fault named in a 400); this guards stored configs and in-process
 * callers. The message names the first bad field, never a value (values may be secrets).
 */
export function checkConfig<T extends TSchema>(schema: T, config: unknown, provider: string): Static<T> {
  if (Value.Check(schema, config)) return config;
  const first = Value.Errors(schema, config).First();
  const field = first?.path.replace(/^\//, '').replace(/\//g, '.') || '(config)';
  throw new KeystrataError('configuration_invalid', `The ${provider} CMK config is invalid at "${field}".`, { field });
}
