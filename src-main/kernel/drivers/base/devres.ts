// drivers/base/devres.c: device-managed resources. A release may have to wait (for a
// reference to drain); it then returns a Completion and the next release runs after it.
import type { Kernel } from '../../kernel';
import type { device } from './core';
import { ENOMEM } from '../../include/errno';
import { Completion, complete, completed, wait_for_completion } from '../../kernel/sched/completion';

export type DevresRelease = (k: Kernel, dev: device, data: unknown) => Completion | void;

export interface DevresNode {
  release: DevresRelease;
  data: unknown;
}

/** devres_add / devm_add_action without the failure point, for callers that cannot fail. */
export function devres_add_action(dev: device, release: DevresRelease, data: unknown): void {
  dev.devres.push({ release, data });
}

export function devm_add_action(k: Kernel, dev: device, release: DevresRelease, data: unknown): number {
  if (k.fault.should_fail('devm_add_action')) return -ENOMEM;
  devres_add_action(dev, release, data);
  return 0;
}

/** Like devm_add_action, but runs the action at once when it cannot be registered. */
export function devm_add_action_or_reset(
  k: Kernel,
  dev: device,
  release: DevresRelease,
  data: unknown,
): number {
  const ret = devm_add_action(k, dev, release, data);
  if (ret) release(k, dev, data);
  return ret;
}

/** Forget a registered action without running it. */
export function devm_remove_action(dev: device, release: DevresRelease, data: unknown): void {
  devres_remove_matching(dev, release, (d) => d === data);
}

export function devres_remove_matching(
  dev: device,
  release: DevresRelease,
  match: (data: unknown) => boolean,
): boolean {
  for (let i = dev.devres.length - 1; i >= 0; i--) {
    const node = dev.devres[i]!;
    if (node.release === release && match(node.data)) {
      dev.devres.splice(i, 1);
      return true;
    }
  }
  return false;
}

/** Find, remove and run one managed resource. Returns when the release is done. */
export function devres_release(
  k: Kernel,
  dev: device,
  release: DevresRelease,
  match: (data: unknown) => boolean,
): Completion {
  for (let i = dev.devres.length - 1; i >= 0; i--) {
    const node = dev.devres[i]!;
    if (node.release === release && match(node.data)) {
      dev.devres.splice(i, 1);
      return release(k, dev, node.data) ?? completed();
    }
  }
  return completed();
}

/** Release every managed resource, newest first, waiting on each that has to wait. */
export function devres_release_all(k: Kernel, dev: device): Completion {
  const done = new Completion();
  const next = (): void => {
    const node = dev.devres.pop();
    if (!node) return complete(done);
    const c = node.release(k, dev, node.data);
    if (c) wait_for_completion(c, next);
    else next();
  };
  next();
  return done;
}
