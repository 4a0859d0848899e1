import { b64, NetworkError, sleep, type DrillClient, type Method, type Reply } from './drill-http.js';

/**
 * The write load of the three-node drill: writers, each attached to one node, creating vault
 * objects with unique names, updating their own objects and encrypting records. A writer whose
 * request fails at the connection (its node died, or the answer was lost) moves to the next node
 * and sends the same request again; since the first attempt may have committed, an answer that
 * says "already done" is checked against what the writer sent before the write counts as
 * acknowledged. Everything acknowledged is recorded, to be read back at the end.
 */

export interface AckedObject {
  readonly name: string;
  readonly context: Record<string, string>;
  readonly id: string;
  /** values[v - 1] is the value of version v, as acknowledged. */
  readonly values: string[];
}

export interface AckedRecord {
  readonly scope: { readonly type: 'connection' | 'job' | 'event' | 'log'; readonly id: string };
  readonly plaintext: string;
  readonly ciphertext: string;
}

export interface LoadStats {
  /** Requests that failed at the connection and were sent again (to another node). */
  networkErrors: number;
  /** Creates answered 409 already_exists after such a failure: the first attempt had committed. */
  recoveredCreates: number;
  /** Updates answered 409 version_conflict (one version further) after such a failure: likewise. */
  recoveredUpdates: number;
  /** Acknowledged writes by the pid of the node that answered. */
  byPid: Map<number, number>;
}

export interface LoadNode {
  readonly url: string;
  readonly pid: number;
}

export interface Load {
  readonly objects: AckedObject[];
  readonly records: AckedRecord[];
  readonly stats: LoadStats;
  /** Anything that is not an acknowledged write or a proven earlier commit. */
  readonly failures: string[];
  /** Ask the writers to stop after their current write; resolves when they have. */
  stop(): Promise<void>;
}

export interface LoadOptions {
  readonly client: DrillClient;
  readonly nodes: readonly LoadNode[];
  readonly envPath: string;
  readonly writersPerNode: number;
  /** Contexts to spread objects over (some may exist already, some are new). */
  readonly contexts: number;
  readonly salt: string;
}

export function startLoad(options: LoadOptions): Load {
  const { client, nodes, envPath, salt } = options;
  const objects: AckedObject[] = [];
  const records: AckedRecord[] = [];
  const failures: string[] = [];
  const stats: LoadStats = { networkErrors: 0, recoveredCreates: 0, recoveredUpdates: 0, byPid: new Map() };
  let stopping = false;

  /** Send, moving to the next node on a connection failure; `uncertain`: an earlier attempt may have been handled. */
  async function send(writer: { at: number }, method: Method, path: string, body?: unknown): Promise<{ reply: Reply; uncertain: boolean }> {
    let uncertain = false;
    for (let attempt = 0; attempt < 30; attempt++) {
      const node = nodes[writer.at]!;
      try {
        const reply = await client.call(node.url, method, path, body);
        if (method !== 'GET' && reply.status < 300) stats.byPid.set(node.pid, (stats.byPid.get(node.pid) ?? 0) + 1);
        return { reply, uncertain };
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        uncertain = true;
        stats.networkErrors++;
        writer.at = (writer.at + 1) % nodes.length;
        await sleep(10);
      }
    }
    throw new Error(`${method} ${path}: no node answered in 30 attempts`);
  }

  async function readByName(writer: { at: number }, name: string): Promise<Reply> {
    return (await send(writer, 'GET', `${envPath}/objects?name=${encodeURIComponent(name)}`)).reply;
  }

  function acknowledge(object: AckedObject): AckedObject {
    objects.push(object);
    return object;
  }

  async function create(writer: { at: number }, name: string, value: string, context: Record<string, string>): Promise<AckedObject | undefined> {
    const { reply, uncertain } = await send(writer, 'POST', `${envPath}/objects`, { name, value, context });
    if (reply.status === 201) return acknowledge({ name, context, id: reply.body.id as string, values: [value] });
    if (reply.status === 409 && reply.body?.error?.code === 'already_exists' && uncertain) {
      const existing = await readByName(writer, name);
      if (existing.status === 200 && existing.body.value === value && existing.body.version === 1) {
        stats.recoveredCreates++;
        return acknowledge({ name, context, id: existing.body.id as string, values: [value] });
      }
      failures.push(`create ${name}: 409 on retry, but the stored object is ${JSON.stringify(existing)}`);
      return undefined;
    }
    failures.push(`create ${name} → ${reply.status} ${JSON.stringify(reply.body)}`);
    return undefined;
  }

  async function update(writer: { at: number }, object: AckedObject, value: string): Promise<void> {
    const expectedVersion = object.values.length;
    const { reply, uncertain } = await send(writer, 'PUT', `${envPath}/objects/${object.id}`, { value, expectedVersion });
    if (reply.status === 200 && reply.body.version === expectedVersion + 1) {
      object.values.push(value);
      return;
    }
    if (reply.status === 409 && reply.body?.error?.code === 'version_conflict' && uncertain && reply.body.error.details?.currentVersion === expectedVersion + 1) {
      const stored = await readByName(writer, object.name);
      if (stored.status === 200 && stored.body.value === value && stored.body.version === expectedVersion + 1) {
        stats.recoveredUpdates++;
        object.values.push(value);
        return;
      }
      failures.push(`update ${object.name}: 409 on retry, but the stored object is ${JSON.stringify(stored)}`);
      return;
    }
    failures.push(`update ${object.name} v${expectedVersion} → ${reply.status} ${JSON.stringify(reply.body)}`);
  }

  async function encrypt(writer: { at: number }, scope: AckedRecord['scope'], plaintext: string): Promise<void> {
    const { reply } = await send(writer, 'POST', `${envPath}/encrypt`, { scope, plaintext: b64(plaintext) });
    if (reply.status === 200) records.push({ scope, plaintext, ciphertext: reply.body.ciphertext as string });
    else failures.push(`encrypt ${scope.type}/${scope.id} → ${reply.status} ${JSON.stringify(reply.body)}`);
  }

  async function runWriter(w: number): Promise<void> {
    const writer = { at: w % nodes.length };
    const mine: AckedObject[] = [];
    for (let n = 0; !stopping; n++) {
      try {
        const created = await create(writer, `w${w}-o${n}`, `w${w} o${n} v1 ${salt}`, { tenant: `t${(w + n) % options.contexts}` });
        if (created) mine.push(created);
        if (n % 2 === 1 && mine.length > 0) {
          const target = mine[(n * 7) % mine.length]!;
          await update(writer, target, `w${w} o${n} → ${target.name} v${target.values.length + 1} ${salt}`);
        }
        await encrypt(writer, { type: 'event', id: `w${w}-e${n}` }, `event w${w} n${n} ${salt}`);
        await encrypt(writer, { type: 'job', id: `w${w}-j${n % 5}` }, `job w${w} n${n} ${salt}`);
        await encrypt(writer, { type: 'connection', id: `w${w}-c${n}` }, `connection w${w} n${n} ${salt}`);
      } catch (error) {
        failures.push(`writer ${w}: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    }
  }

  const writers = Array.from({ length: nodes.length * options.writersPerNode }, (_, w) => runWriter(w));
  return {
    objects,
    records,
    stats,
    failures,
    async stop() {
      stopping = true;
      await Promise.all(writers);
    },
  };
}
