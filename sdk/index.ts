/**
 * keystrata SDK: a typed, dependency-free client of the keystrata HTTP API.
 *
 * @packageDocumentation
 */
export { KeystrataClient, type KeystrataClientOptions } from './client.js';
export { KeystrataApiError, isKeystrataApiError, type ClientErrorCode, type KeystrataApiErrorInit } from './errors.js';
export type { FetchLike } from './transport.js';
export type * from './types.js';
