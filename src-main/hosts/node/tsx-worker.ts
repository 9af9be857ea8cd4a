// Starts lab-worker.ts from source: the web host and the tests run TypeScript unbundled, under tsx.
import { Worker } from 'node:worker_threads';
import { LabClient } from './lab-client';
import type { LabWorkerData } from './lab-worker';

// Node 20 ignores `execArgv: ['--import', 'tsx']` for a worker's own entry (loader hooks are per
// process there), so the worker registers tsx itself before importing the TypeScript entry.
function tsxBootstrap(entry: URL): string {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
}

export function startSourceLab(data: LabWorkerData = {}): LabClient {
  const entry = new URL('./lab-worker.ts', import.meta.url);
  return new LabClient(new Worker(tsxBootstrap(entry), { eval: true, workerData: data }));
}
