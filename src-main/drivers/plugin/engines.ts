// Engine instances made ahead of time. Making a QuickJS instance is asynchronous (the
// WebAssembly instantiates behind a promise), while a machine boots and probes its devices
// synchronously, as the kernel does. So a few instances wait here, made while the lab is
// idle: binding a plugin driver takes one at once and another is made in the background.
// Each sandbox still gets an instance of its own (a trap in one plugin cannot touch another).
import type { QuickJSWASMModule } from 'quickjs-emscripten-core';
import { newQuickJSInstance } from '../sandbox/quickjs';

/** Instances kept ready: a machine rarely has more plugin devices than this (~1 MiB and 8 ms each). */
export const SPARE_ENGINES = 4;

const spares: QuickJSWASMModule[] = [];
let filling: Promise<void> | null = null;

/** Make sure at least `n` instances (default SPARE_ENGINES) are ready; resolves when they are. */
export async function prepareEngines(n = SPARE_ENGINES): Promise<void> {
  while (spares.length < n) {
    filling ??= (async () => {
      try {
        spares.push(await newQuickJSInstance());
      } finally {
        filling = null;
      }
    })();
    await filling;
  }
}

/** Instances ready now. */
export function enginesReady(): number {
  return spares.length;
}

/** A ready instance, or undefined when none is (await prepareEngines() first). Refills in the background. */
export function takeEngine(): QuickJSWASMModule | undefined {
  const m = spares.pop();
  if (m) void prepareEngines(SPARE_ENGINES).catch(() => {});
  return m;
}
