// LabApi over the web host's WebSocket (/api). Reconnects on its own. Requests made before the
// first connection wait for it; once the connection has been lost, requests reject with ENOTCONN
// until it is back (the lab that answers then may be a fresh one, which never heard of what they
// were about), and requests in flight when it drops reject with ECONNRESET.
import { LabRequestError } from './errors';
import type { LabApi, LabEvent, LabRequest, LabResponse, WireMessage, WireRequest } from './lab';

/** What the client needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

/** A LabApi that also says whether its transport is up (the Electron bridge always is). */
export interface LabConnection extends LabApi {
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
}

const OPEN = 1;

export class WsLabClient implements LabConnection {
  private socket: SocketLike | undefined;
  private status: ConnectionStatus = 'connecting';
  private nextId = 1;
  private retryMs = 250;
  private closed = false;
  private wasOpen = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly queue: WireRequest[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (res: unknown) => void; reject: (e: Error) => void }
  >();
  private readonly listeners = new Set<(event: LabEvent) => void>();
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();

  constructor(
    private readonly url: string,
    private readonly open: (url: string) => SocketLike,
  ) {
    this.connect();
  }

  request<R extends LabRequest>(req: R): Promise<LabResponse<R>> {
    if (this.closed)
      return Promise.reject(new LabRequestError({ code: 'ECONNRESET', message: 'client closed' }));
    if (this.wasOpen && this.socket?.readyState !== OPEN)
      return Promise.reject(
        new LabRequestError({ code: 'ENOTCONN', message: 'not connected to the lab (reconnecting)' }),
      );
    const msg: WireRequest = { id: this.nextId++, req };
    return new Promise<LabResponse<R>>((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (res: unknown) => void, reject });
      if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(msg));
      else this.queue.push(msg);
    });
  }

  onEvent(listener: (event: LabEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
    this.dropPending('client closed');
  }

  private connect(): void {
    if (this.status !== 'connecting') this.setStatus('connecting');
    const socket = this.open(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.retryMs = 250;
      this.wasOpen = true;
      for (const msg of this.queue.splice(0)) socket.send(JSON.stringify(msg));
      this.setStatus('open');
    });
    socket.addEventListener('message', ({ data }) => this.receive(String(data)));
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.dropPending('connection to the lab lost');
      this.setStatus('closed');
      if (this.closed) return;
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 4000);
    });
    // 'error' is always followed by 'close', which does the work.
    socket.addEventListener('error', () => {});
  }

  private receive(data: string): void {
    let msg: WireMessage;
    try {
      msg = JSON.parse(data) as WireMessage;
    } catch {
      return;
    }
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

  private dropPending(message: string): void {
    const queued = new Set(this.queue.map((m) => m.id));
    for (const [id, { reject }] of this.pending) {
      if (queued.has(id) && !this.closed) continue; // asked before the first connection: sent on it
      this.pending.delete(id);
      reject(new LabRequestError({ code: 'ECONNRESET', message }));
    }
    if (this.closed) this.queue.length = 0;
  }

  private setStatus(status: ConnectionStatus): void {
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }
}
