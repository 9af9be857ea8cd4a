// The renderer for the web host (src-main/hosts/web): the same app as Electron's, built to out/web.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import { monacoInlineWorkers } from './src-renderer/build/monaco-workers';

export default defineConfig({
  root: resolve(import.meta.dirname, 'src-renderer'),
  base: './',
  plugins: [vue(), monacoInlineWorkers()],
  build: {
    outDir: resolve(import.meta.dirname, 'out/web'),
    emptyOutDir: true,
    target: 'es2022',
  },
});
