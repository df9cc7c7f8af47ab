import type { Abstract } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';

/**
 * The implementation of a port (an abstract class a lower module declares and a higher one binds;
 * docs/ARCHITECTURE.md, "Ports"), taken in `onModuleInit` once every provider exists. A port left
 * unbound stops the start with a message naming who should bind it.
 */
export function resolvePort<T>(moduleRef: ModuleRef, port: Abstract<T>, boundBy: string): T {
  let bound: T | undefined;
  try {
    bound = moduleRef.get(port, { strict: false });
  } catch {
    bound = undefined;
  }
  if (!bound) throw new Error(`${port.name} is not bound: ${boundBy} must provide it (docs/ARCHITECTURE.md, "Ports")`);
  return bound;
}
