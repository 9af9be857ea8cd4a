// Build helper shared by the two renderer builds (electron.vite.config.ts, vite.web.config.ts).
//
// Monaco's TypeScript support can start its worker itself, from `new URL('ts.worker.js',
// import.meta.url)`, which makes the bundler emit a second 7 MB copy of the worker as a file. The
// app never uses it: src/drivers/monaco.ts hands Monaco inlined workers through
// MonacoEnvironment.getWorker. This drops Monaco's own worker URL, and fails the build if a Monaco
// upgrade changes the line, so the question is looked at again rather than silently doubled.
import type { Plugin } from 'vite';

const TS_WORKER_MANAGER = /monaco-editor\/esm\/vs\/languages\/features\/typescript\/workerManager\.js$/;
const OWN_WORKER =
  /createWorker: \(\) => new Worker\(new URL\('ts\.worker\.js', import\.meta\.url\), \{ type: "module" \}\),/;

export function monacoInlineWorkers(): Plugin {
  return {
    name: 'hmm-lab:monaco-inline-workers',
    enforce: 'pre',
    transform(code, id) {
      if (!TS_WORKER_MANAGER.test(id.split('?')[0]!)) return null;
      if (!OWN_WORKER.test(code))
        this.error(
          `${id}: Monaco no longer creates its TypeScript worker as expected; check src-renderer/build/`,
        );
      return { code: code.replace(OWN_WORKER, ''), map: null };
    },
  };
}
