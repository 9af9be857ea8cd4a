// QuickJS as WebAssembly: the release build of the synchronous variant, read from node_modules (no
// network). The .wasm is compiled once per process; every sandbox gets its own instance, so a trap
// in one plugin's engine (which leaves that instance's C state undefined) cannot touch another's.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import variant from '@jitl/quickjs-wasmfile-release-sync';
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSWASMModule } from 'quickjs-emscripten-core';

let compiled: Promise<WebAssembly.Module | undefined> | undefined;

// The project's lib has no DOM, so WebAssembly is typed here only as the variant's types declare it.
const wasm = (
  globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WebAssembly.Module> } }
).WebAssembly;

// Both packages are runtime dependencies, so electron-vite leaves them external and they resolve from
// node_modules beside the bundle. Should the .wasm not be found, the variant locates it on its own
// (one compile per sandbox instead of one per process).
function wasmModule(): Promise<WebAssembly.Module | undefined> {
  compiled ??= (async () => {
    try {
      const path = createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
      return await wasm.compile(await readFile(path));
    } catch {
      return undefined;
    }
  })();
  return compiled;
}

/** A fresh QuickJS engine instance with its own WebAssembly memory. */
export async function newQuickJSInstance(): Promise<QuickJSWASMModule> {
  const module = await wasmModule();
  return newQuickJSWASMModuleFromVariant(module ? newVariant(variant, { wasmModule: module }) : variant);
}
