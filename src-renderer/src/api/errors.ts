import type { LabError } from './lab';

/** A refused request: an Error that is also the contract's LabError. */
export class LabRequestError extends Error implements LabError {
  readonly code: string;
  constructor(error: LabError) {
    super(error.message);
    this.name = 'LabRequestError';
    this.code = error.code;
  }
}

/** Whatever a request rejected with, as a LabError (the preload bridge rejects with plain objects). */
export function toLabError(err: unknown): LabError {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const message = 'message' in err && typeof err.message === 'string' ? err.message : err.code;
    return { code: err.code, message };
  }
  return { code: 'EINTERNAL', message: err instanceof Error ? err.message : String(err) };
}
