import type { KeystrataClient } from '../../../sdk/index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Object ids are UUIDs; anything else given where "name-or-id" is accepted is a name. */
export function isObjectId(nameOrId: string): boolean {
  return UUID.test(nameOrId);
}

/** The id of an object given by name or id (one lookup for a name; none for an id). */
export async function resolveObjectId(client: KeystrataClient, ws: string, env: string, nameOrId: string): Promise<string> {
  if (isObjectId(nameOrId)) return nameOrId;
  return (await client.getObjectByName(ws, env, nameOrId)).id;
}
