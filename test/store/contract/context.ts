import type { EnvironmentRecord, Store } from '../../../src/store/store.js';
import type { StoreLocation } from '../backends.js';

/** What the contract groups get from the suite; `store` and `peer` are set once beforeAll has run. */
export interface ContractContext {
  /** The backend under test, known before the store is opened (for cases that only one backend runs). */
  readonly kind: 'sqlite' | 'postgres';
  /** The store most tests share (each works in its own fresh workspace). */
  readonly store: Store;
  /** A second store on the same database, standing in for another node. */
  readonly peer: Store;
  /** An empty database location of this backend, destroyed after the suite. */
  freshLocation(): Promise<StoreLocation>;
  /** A new workspace in `store`, returning its first environment. */
  freshEnvironment(): Promise<EnvironmentRecord>;
}
