import * as fc from 'fast-check';
import { ManualClock } from '../src/common/clock';
import { simCase, Simulation, SimStats } from './support/simulation';
import { TestApp } from './support/test-app';

/**
 * The version model's invariants over random fleets and random orders of events (see
 * docs/version-model.md): upgrades with nothing to do are never created; a serving pair member is
 * never stopped while its peer is not serving with it; every agent ends on both targets or shows
 * why not; and an agent nothing holds back converges.
 *
 * Seeded: CONVERGENCE_SEED=<seed> reproduces a run (the seed is printed), CONVERGENCE_RUNS sets
 * how many cases (at least 200 in CI). SQLite only: the invariants are the services' rules, which
 * the database kind does not change; the e2e suites cover both databases.
 */
const RUNS = Number(process.env.CONVERGENCE_RUNS ?? 200);
const SEED = Number(process.env.CONVERGENCE_SEED ?? Date.now() % 2 ** 31);

describe('convergence: random fleets through random upgrades [sqlite]', () => {
  let t: TestApp;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  beforeAll(async () => {
    t = await TestApp.start('sqlite', { clock, env: { HEARTBEAT_TIMEOUT_S: '10' } });
    // The world drives the executor, the offline sweep and auto-upgrade itself, in a fixed order,
    // so that a seed replays the same run.
    t.stopTimers();
  });
  afterAll(() => t.close());

  it(`holds its invariants over ${RUNS} cases (seed ${SEED})`, async () => {
    process.stdout.write(`[convergence] ${RUNS} cases, seed ${SEED} (CONVERGENCE_SEED=${SEED} replays them)\n`);
    await fc.assert(
      fc.asyncProperty(simCase, async (c) => {
        const violations = await new Simulation(t, clock).run(c);
        if (violations.length) throw new Error(`invariants broken:\n- ${violations.join('\n- ')}`);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    process.stdout.write(`[convergence] ${JSON.stringify(SimStats)}\n`);
  }, 600_000);
});
