// The two IPC channels between the preload bridge and the main process.
import type { LabError } from '../../api';

/** invoke(REQUEST, LabRequest) -> IpcReply */
export const REQUEST_CHANNEL = 'hmm-lab:request';
/** send(EVENT, LabEvent), main -> renderer */
export const EVENT_CHANNEL = 'hmm-lab:event';

/** Errors thrown in an ipcMain handler lose their fields on the way, so replies carry them as data. */
export type IpcReply = { ok: true; res: unknown } | { ok: false; error: LabError };
