// Run inside a worker thread by calls.test.ts: load a plugin, call it, provoke a timeout, report.
import { parentPort } from 'node:worker_threads';
import { PluginError, PluginSandbox } from '../../../src-main/drivers/sandbox';

const sb = await PluginSandbox.load(
  'export function add(a: number, b: number): number { return a + b; }\nexport function spin(): void {\n  for (;;) {}\n}\n',
  'driver.ts',
  {},
  { budget: 100 },
);
const sum = sb.call('add', [2, 3]);
let fault: unknown;
try {
  sb.call('spin');
} catch (e) {
  if (e instanceof PluginError) fault = { kind: e.kind, callback: e.callback, line: e.line };
}
parentPort!.postMessage({ sum, fault });
