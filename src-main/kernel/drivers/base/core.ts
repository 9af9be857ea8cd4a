// drivers/base/core.c: the few parts of struct device the memory code relies on.
import type { DevresNode } from './devres';

export class device {
  /** Managed resources (devres), released newest first when the driver lets go. */
  devres: DevresNode[] = [];
  drvdata: unknown = null;
  /** NUMA node; -1 means "no preference" as with dev_to_node(). */
  numa_node = -1;

  constructor(public name: string) {}
}

export function dev_name(dev: device): string {
  return dev.name;
}

export function dev_to_node(dev: device): number {
  return dev.numa_node;
}

export function dev_set_drvdata(dev: device, data: unknown): void {
  dev.drvdata = data;
}

export function dev_get_drvdata(dev: device): unknown {
  return dev.drvdata;
}
