// Picks the lab's transport: the preload bridge inside Electron, the web host's WebSocket in a browser.
import { LabRequestError, toLabError } from './errors';
import type { LabApi, LabRequest, LabResponse } from './lab';
import { WsLabClient, type LabConnection } from './ws-client';

export type { ConnectionStatus, LabConnection } from './ws-client';

function overBridge(bridge: LabApi): LabConnection {
  return {
    async request<R extends LabRequest>(req: R): Promise<LabResponse<R>> {
      try {
        return await bridge.request(req);
      } catch (err) {
        throw new LabRequestError(toLabError(err));
      }
    },
    onEvent: (listener) => bridge.onEvent(listener),
    onStatus(listener) {
      listener('open');
      return () => {};
    },
  };
}

export function connectLab(): LabConnection {
  if (window.hmmLab) return overBridge(window.hmmLab);
  const url = new URL('api', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return new WsLabClient(url.href, (u) => new WebSocket(u));
}
