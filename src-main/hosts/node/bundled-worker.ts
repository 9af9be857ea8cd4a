// Starts lab-worker.ts bundled as the desktop app runs it (electron-vite makes it a chunk of the
// main process, its bindings const): the web host's lab. From source under tsx the simulator is
// slower (docs/BENCHMARKS.md, "Const bindings"). Bundled once a process, into out/lab/.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { bundleForNode } from '../../build/node-bundle';
import { projectPath } from '../../build/project-dir';
import { LabClient } from './lab-client';
import type { LabWorkerData } from './lab-worker';

export function startBundledLab(data: LabWorkerData = {}): LabClient {
  const bundled = bundleForNode(
    fileURLToPath(new URL('./lab-worker.ts', import.meta.url)),
    projectPath(import.meta.url, 'out/lab/lab-worker.mjs'),
  );
  return new LabClient(new Worker(bundled, { workerData: data }));
}
