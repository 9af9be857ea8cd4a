/** Bad user input (a machine or scenario file, a request): names where and what was expected. */
export class InputError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}
