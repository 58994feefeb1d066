/**
 * Starts what the tests talk to, on free ports, for this run only (never a pre-started service).
 * Test files get the addresses through inject('services').
 *
 * Every tier that needs services (integration, e2e, tooling) lists this file; global setups of all
 * projects run in the one main process, so the services are started once and shared through
 * `globalThis`, and stopped when the last project that asked for them tears down. The unit tier does
 * not list it: a unit test that calls inject('services') gets undefined and fails.
 */
import type { TestProject } from 'vitest/node';
import { startServices, type Services } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services;
  }
}

interface Shared {
  started: ReturnType<typeof startServices>;
  users: number;
}

const slot = globalThis as typeof globalThis & { __fcfsTestServices?: Shared };

export default async function setup(project: TestProject) {
  const shared = (slot.__fcfsTestServices ??= { started: startServices('test'), users: 0 });
  shared.users += 1;
  const { services, stop } = await shared.started;
  project.provide('services', services);
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    slot.__fcfsTestServices = undefined;
    await stop();
  };
}
