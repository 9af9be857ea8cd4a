// The renderer's only door to the lab: window.hmmLab, a LabApi over two IPC channels.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { LabApi, LabEvent, LabRequest, LabResponse } from '../../api';
import { EVENT_CHANNEL, REQUEST_CHANNEL, type IpcReply } from './channels';

const hmmLab: LabApi = {
  async request<R extends LabRequest>(req: R): Promise<LabResponse<R>> {
    const reply = (await ipcRenderer.invoke(REQUEST_CHANNEL, req)) as IpcReply;
    if (reply.ok) return reply.res as LabResponse<R>;
    // A plain { code, message } crosses the context bridge intact; an Error would keep only its message.
    throw reply.error;
  },
  onEvent(listener: (event: LabEvent) => void): () => void {
    const forward = (_e: IpcRendererEvent, event: LabEvent): void => listener(event);
    ipcRenderer.on(EVENT_CHANNEL, forward);
    return () => {
      ipcRenderer.off(EVENT_CHANNEL, forward);
    };
  },
};

contextBridge.exposeInMainWorld('hmmLab', hmmLab);
