/**
 * Collapses concurrent calls for the same key into one: while a call for `key` is in flight, every
 * other caller awaits the same promise. This is what turns "N concurrent requests on a cold cache"
 * into one KMS call instead of N.
 */
export class SingleFlight<K, T> {
  private readonly inFlight = new Map<K, Promise<T>>();

  run(key: K, work: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running;
    const started = (async () => {
      try {
        return await work();
      } finally {
        this.inFlight.delete(key);
      }
    })();
    this.inFlight.set(key, started);
    return started;
  }
}
