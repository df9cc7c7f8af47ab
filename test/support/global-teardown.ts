export default async function globalTeardown(): Promise<void> {
  const container = (globalThis as { __lockstepPg?: { stop(): Promise<unknown> } }).__lockstepPg;
  if (container) await container.stop();
}
