/**
 * Starts what the tests talk to, on free ports, for this run only (never a pre-started service).
 * Test files get the addresses through inject('services').
 */
import type { TestProject } from 'vitest/node';
import { startServices, type Services } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services;
  }
}

export default async function setup(project: TestProject) {
  const { services, stop } = await startServices('test');
  project.provide('services', services);
  return stop;
}
