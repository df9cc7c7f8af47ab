// Fakes for the unit specs only: the production build leaves src/testing/ out (tsconfig.build.json).
import type { EntityManager } from 'typeorm';
import type { Database, Tx } from '../database/database';

/**
 * Typed fakes for the unit specs of the services (issue 17): a transaction and a `Database` that
 * record what the service did with them, and a mock whose every method is a `jest.fn()`. No
 * database is opened: the rules the specs hold are the services' own (docs/ARCHITECTURE.md, "6.
 * Testing"); what needs SQL is an e2e test.
 */

/** Properties Jest and `await` probe on any value: a mock answers undefined, not a method. */
const NOT_METHODS = new Set<PropertyKey>(['then', 'toJSON', 'asymmetricMatch', 'nodeType', '$$typeof', 'constructor']);

const methodsOf = new WeakMap<object, Map<string, jest.Mock>>();

/**
 * A mock of a class or interface: each method is a `jest.fn()` made on first use, answering
 * undefined until a test gives it a value. Typed, so `mock.findById.mockResolvedValue(x)` must be
 * given what the real method returns.
 */
export function mockOf<T extends object>(): jest.Mocked<T> {
  const methods = new Map<string, jest.Mock>();
  const mock = new Proxy(
    {},
    {
      get(_target, key) {
        if (typeof key === 'symbol' || NOT_METHODS.has(key)) return undefined;
        let method = methods.get(key);
        if (!method) methods.set(key, (method = jest.fn()));
        return method;
      },
    },
  );
  methodsOf.set(mock, methods);
  return mock as jest.Mocked<T>;
}

/** The names of the methods of a `mockOf` mock that were called, sorted. */
export function calledMethods(mock: object): string[] {
  const methods = methodsOf.get(mock);
  if (!methods) throw new Error('calledMethods takes a mock made by mockOf');
  return [...methods.entries()]
    .filter(([, fn]) => fn.mock.calls.length > 0)
    .map(([name]) => name)
    .sort();
}

/**
 * A transaction body's `Tx`. `em` is a marker object: repositories are mocks, so it only shows which
 * transaction a write was made in. `rowLock` is SQLite's (undefined) unless a test asks for
 * PostgreSQL's, where reports lock their command row.
 */
export class FakeTx implements Tx {
  readonly em: EntityManager;
  readonly rowLock: Tx['rowLock'];
  /** The advisory locks taken, in order; a jest.fn so its call order can be compared with others'. */
  readonly advisoryLock = jest.fn((_name: string): Promise<void> => Promise.resolve());
  readonly afterCommitHooks: Array<() => void | Promise<void>> = [];
  readonly beforeCommitHooks: Array<() => Promise<void>> = [];
  state: 'open' | 'committed' | 'rolled-back' = 'open';

  constructor(
    readonly id: number,
    dialect: 'sqlite' | 'postgres' = 'sqlite',
  ) {
    this.em = { transaction: id } as unknown as EntityManager;
    this.rowLock = dialect === 'postgres' ? { mode: 'pessimistic_write' } : undefined;
  }

  afterCommit(hook: () => void | Promise<void>): void {
    this.afterCommitHooks.push(hook);
  }

  beforeCommit(hook: () => Promise<void>): void {
    this.beforeCommitHooks.push(hook);
  }

  /** Runs the after-commit hooks as Database.transaction does once it committed. */
  async commit(): Promise<void> {
    for (const hook of this.beforeCommitHooks) await hook();
    this.state = 'committed';
    for (const hook of this.afterCommitHooks) await hook();
  }
}

/**
 * `Database` as the services use it: `transaction(body)` runs the body with a new `FakeTx`, then
 * commits it (after-commit hooks run) or, when the body throws, marks it rolled back and runs no
 * hook. Every transaction is kept, so a spec can say how many a call opened and what each became.
 */
export class FakeDatabase implements Pick<Database, 'transaction' | 'reader' | 'type'> {
  readonly transactions: FakeTx[] = [];
  readonly reader = { reader: true } as unknown as EntityManager;

  constructor(readonly type: 'sqlite' | 'postgres' = 'sqlite') {}

  async transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    const tx = new FakeTx(this.transactions.length + 1, this.type);
    this.transactions.push(tx);
    let result: T;
    try {
      result = await body(tx);
    } catch (error) {
      tx.state = 'rolled-back';
      throw error;
    }
    await tx.commit();
    return result;
  }

  /** The one transaction a call opened; fails the test when it opened none or several. */
  only(): FakeTx {
    if (this.transactions.length !== 1)
      throw new Error(`expected one transaction, the call opened ${this.transactions.length}`);
    return this.transactions[0];
  }

  /** What a service's constructor takes: it only uses what Pick<Database, ...> above lists. */
  asDatabase(): Database {
    return this as unknown as Database;
  }
}

/** What a promise rejected with, for checking a refusal's code, message and details together. */
export async function refusalOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal, the call succeeded');
}
