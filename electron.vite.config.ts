import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import type { Plugin } from 'vite';
import vue from '@vitejs/plugin-vue';
import { monacoInlineWorkers } from './src-renderer/build/monaco-workers';
import { constBindingsPlugin } from './src-main/build/const-bindings';

// The built renderer is loaded from file://, so its CSP travels in the page: no remote origin, no inline
// script, and no network at all (the lab is reached through the preload bridge). Two allowances are
// for Monaco (src-renderer/src/drivers/monaco.ts): its workers start from blob: URLs holding their
// bundled code (worker-src only; scripts stay 'self'), and it writes its theme, token colours and
// line positions as <style> elements and style attributes ('unsafe-inline' styles, never scripts).
const RENDERER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

function cspMeta(): Plugin {
  return {
    name: 'hmm-lab:csp-meta',
    apply: 'build',
    transformIndexHtml: () => [
      {
        tag: 'meta',
        attrs: { 'http-equiv': 'Content-Security-Policy', content: RENDERER_CSP },
        injectTo: 'head-prepend',
      },
    ],
  };
}

export default defineConfig({
  main: {
    // The simulator runs in this bundle (its lab worker chunk): see src-main/build/.
    plugins: [constBindingsPlugin()],
    build: {
      rolldownOptions: { input: { index: resolve(import.meta.dirname, 'src-main/hosts/electron/main.ts') } },
    },
  },
  preload: {
    build: {
      rolldownOptions: {
        input: { index: resolve(import.meta.dirname, 'src-main/hosts/electron/preload.ts') },
        // Sandboxed preload scripts cannot be ES modules.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(import.meta.dirname, 'src-renderer'),
    base: './',
    plugins: [vue(), monacoInlineWorkers(), cspMeta()],
    build: {
      outDir: resolve(import.meta.dirname, 'out/renderer'),
      rolldownOptions: { input: resolve(import.meta.dirname, 'src-renderer/index.html') },
    },
  },
});
