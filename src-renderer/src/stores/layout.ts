// What the lab last said about the physical layout. Replaced wholesale by each reply and `layout` event.
import { defineStore } from 'pinia';
import { reactive, ref, shallowRef } from 'vue';
import { toLabError } from '../api/errors';
import type { ConnectionStatus, LabConnection } from '../api/client';
import type { DeviceKind, DeviceSpec, LabError, LayoutSnapshot } from '../api/lab';

export const useLayoutStore = defineStore('layout', () => {
  const snapshot = shallowRef<LayoutSnapshot | null>(null);
  const status = ref<ConnectionStatus>('connecting');
  const loadError = ref<LabError | null>(null);
  /** The hotplug form's fields, here so that what was typed is still there when the view comes back. */
  const hotplug = reactive({ kind: 'private' as DeviceKind, name: '', memory: '256M', start: '' });
  let lab: LabConnection | null = null;

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type === 'layout') snapshot.value = event.layout;
    });
    connection.onStatus((s) => {
      status.value = s;
      // Events missed while disconnected are gone: start again from the lab's current layout.
      if (s === 'open') void refresh();
    });
  }

  async function refresh(): Promise<void> {
    if (!lab) return;
    try {
      snapshot.value = await lab.request({ type: 'layout' });
      loadError.value = null;
    } catch (err) {
      loadError.value = toLabError(err);
    }
  }

  /** Resolves to the lab's refusal, or null when the device was added. */
  async function addDevice(device: DeviceSpec): Promise<LabError | null> {
    if (!lab) return { code: 'ENOTCONN', message: 'not connected to a lab' };
    try {
      snapshot.value = await lab.request({ type: 'addDevice', device });
      return null;
    } catch (err) {
      return toLabError(err);
    }
  }

  async function removeDevice(name: string): Promise<LabError | null> {
    if (!lab) return { code: 'ENOTCONN', message: 'not connected to a lab' };
    try {
      snapshot.value = await lab.request({ type: 'removeDevice', name });
      return null;
    } catch (err) {
      return toLabError(err);
    }
  }

  return { snapshot, status, loadError, hotplug, connect, refresh, addDevice, removeDevice };
});
