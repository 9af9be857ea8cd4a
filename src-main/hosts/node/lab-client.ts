// LabApi over a worker thread running lab-worker.ts. The host creates the Worker (electron-vite's
// chunk, or the web host's bundle from bundled-worker.ts) and hands it here.
import type { Worker } from 'node:worker_threads';
import type { LabApi, LabError, LabEvent, LabRequest, LabResponse, WireMessage } from '../../api';

/** A request the lab refused: an Error that is also the contract's LabError. */
export class LabRequestError extends Error implements LabError {
  readonly code: string;
  constructor(error: LabError) {
    super(error.message);
    this.name = 'LabRequestError';
    this.code = error.code;
  }
}

interface Pending {
  resolve: (res: unknown) => void;
  reject: (err: LabRequestError) => void;
}

export class LabClient implements LabApi {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: LabEvent) => void>();
  private dead: LabError | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (msg: WireMessage) => this.receive(msg));
    worker.on('error', (err) =>
      this.fail({ code: 'EWORKER', message: `lab worker crashed: ${err.message}` }),
    );
    worker.on('exit', (code) => this.fail({ code: 'EWORKER', message: `lab worker exited (code ${code})` }));
  }

  request<R extends LabRequest>(req: R): Promise<LabResponse<R>> {
    if (this.dead) return Promise.reject(new LabRequestError(this.dead));
    const id = this.nextId++;
    return new Promise<LabResponse<R>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (res: unknown) => void, reject });
      this.worker.postMessage({ id, req });
    });
  }

  onEvent(listener: (event: LabEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the worker; pending requests reject with EWORKER. */
  async close(): Promise<void> {
    this.fail({ code: 'EWORKER', message: 'lab closed' });
    await this.worker.terminate();
  }

  private receive(msg: WireMessage): void {
    if ('event' in msg) {
      for (const listener of this.listeners) listener(msg.event);
      return;
    }
    const pending = this.pending.get(msg.id);
    if (!pending) return;
    this.pending.delete(msg.id);
    if (msg.ok) pending.resolve(msg.res);
    else pending.reject(new LabRequestError(msg.error));
  }

  private fail(error: LabError): void {
    this.dead ??= error;
    for (const { reject } of this.pending.values()) reject(new LabRequestError(error));
    this.pending.clear();
  }
}
