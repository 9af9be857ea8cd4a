import type { LabApi } from './api/lab';

declare global {
  interface Window {
    /** The Electron preload bridge; absent when the renderer runs in a browser against the web host. */
    hmmLab?: LabApi;
  }
}
