// The lab's virtual clock: simulated nanoseconds, advanced by the kernel's tracepoints
// through a cost model, never by the wall clock. The same steps give the same times.
import type { Kernel } from '../kernel/kernel';
import type { TraceEvent } from '../kernel/trace/events';
import type { Machine } from './machine';

/** What each event costs in simulated time. Users may edit it; defaults say where they come from. */
export interface CostModel {
  /**
   * A CPU page fault resolved by handle_mm_fault (minor: no I/O). 1.3 us: a zero-fill
   * anonymous minor fault measures ~1.0 us median, ~4 us p95 on Linux 6.6 / Core i7-11th gen
   * with rdtsc around the first touch (https://ddumbying.vercel.app/experiments/pagefault-latency);
   * the lab's design brief takes ~1.3 us, which also covers the page zeroing a 4 KiB fault does.
   */
  cpuFaultNs: number;
  /** An mmu notifier invalidation: a local TLB flush plus the secondary MMUs' callbacks. */
  mmuNotifierNs: number;
  /** Delivering a fatal signal (force_sig and the trip to the handler). */
  signalNs: number;
  /** A device page returned to its driver (page_free). */
  devmemFreeNs: number;
  /** A system call's entry and exit (mmap, munmap, fork...), before the work it does. */
  syscallNs: number;
  /** copy_to_user/copy_from_user of mapped memory: ~10 GB/s, a single core's memcpy. */
  userCopyBytesPerNs: number;
  /**
   * A device copy when the clock does not know the device's link: PCIe 4.0 x16 is 31.5 GB/s
   * per direction (16 GT/s x 16 lanes, 128b/130b coding); DMA copies reach ~25 GB/s of it.
   */
  deviceCopyBytesPerNs: number;
  /**
   * Per page a migration unmaps (try_to_unmap: rmap walk, PTE clear, local INVLPG), charged
   * from migrate_vma's `migrated` count; the range's remote shootdown is mmuNotifierNs.
   */
  unmapPageNs: number;
  /** A workload CPU thread's load or store that needs no fault: a DRAM access missing the caches. */
  cpuAccessNs: number;
  /** A device kernel's access to a page in its page table: a GPU global-memory load. */
  deviceAccessNs: number;
  /**
   * One GPU far-fault batch: the driver fetches up to faultBatchSize faults from the fault
   * buffer, services them and replays (~45 us, Zheng et al. HPCA 2016; Allen & Ge SC21).
   */
  gpuFaultBatchNs: number;
  /** Faults per batch: UVM_PERF_FAULT_BATCH_COUNT_DEFAULT in NVIDIA's uvm_gpu_replayable_faults.c. */
  faultBatchSize: number;
  /**
   * Submitting one batch to a device's copy engine (a driver plugin's dma_copy), before its
   * bytes move at the link's speed: ~5-7 us per cudaMemcpyAsync call measured by Wu et al.,
   * "DualPath" (arXiv:2602.21548, section 5.2); ~10 us for a small cudaMemcpy over PCIe 2.0
   * (https://www.cs.virginia.edu/~mwb7w/cuda_support/memory_transfer_overhead.html).
   */
  dmaCopyNs: number;
  /** Peak bandwidth of each link, one direction, GB/s (= bytes per ns). */
  links: Record<LinkKind, number>;
  /** Share of a link's peak a device's DMA copies reach (PCIe packet overhead, Xilinx WP350). */
  dmaEfficiency: number;
}

/** How a device is attached to the CPU. */
export type LinkKind = 'pcie3' | 'pcie4' | 'pcie5' | 'nvlink-c2c';
export const LINK_KINDS: readonly LinkKind[] = ['pcie3', 'pcie4', 'pcie5', 'nvlink-c2c'];
/** The link of a device whose machine file names none. */
export const DEFAULT_LINK: LinkKind = 'pcie4';

export const DEFAULT_COSTS: Readonly<CostModel> = {
  cpuFaultNs: 1300,
  mmuNotifierNs: 500,
  signalNs: 2000,
  devmemFreeNs: 100,
  syscallNs: 250,
  userCopyBytesPerNs: 10,
  deviceCopyBytesPerNs: 25,
  unmapPageNs: 150,
  cpuAccessNs: 100,
  deviceAccessNs: 500,
  gpuFaultBatchNs: 45_000,
  faultBatchSize: 256,
  dmaCopyNs: 5000,
  // PCIe 3.0/4.0/5.0 x16: 8/16/32 GT/s x 16 lanes, 128b/130b coding (PCI-SIG base specs);
  // NVLink-C2C: 900 GB/s both directions (NVIDIA Grace Hopper Superchip whitepaper).
  links: { pcie3: 15.75, pcie4: 31.5, pcie5: 63, 'nvlink-c2c': 450 },
  dmaEfficiency: 0.8,
};

/** The cost model's keys a machine file's `costs` may set, and the link names inside `links`. */
export const COST_KEYS = Object.keys(DEFAULT_COSTS) as (keyof CostModel)[];

/** A cost model with some values replaced (`links` merged key by key). */
export type CostOverrides = Partial<Omit<CostModel, 'links'>> & { links?: Partial<Record<LinkKind, number>> };

export function costModel(overrides: CostOverrides = {}): CostModel {
  return { ...DEFAULT_COSTS, ...overrides, links: { ...DEFAULT_COSTS.links, ...overrides.links } };
}

export class VirtualClock {
  /** Simulated time in ns since boot. */
  now = 0;
  readonly costs: CostModel;
  private readonly pageSize: number;
  private readonly unsubscribe: () => void;
  /** Devices whose copies come through the dma_copy tracepoint (driver plugins). */
  private readonly dmaTraced = new Set<string>();

  /**
   * `linkOf` names the link of a device (by its name), so its copies are charged at that
   * link's speed; without it every device copy goes at deviceCopyBytesPerNs.
   */
  constructor(
    k: Kernel,
    costs: CostOverrides = {},
    private readonly linkOf?: (device: string) => LinkKind,
  ) {
    this.costs = costModel(costs);
    this.pageSize = k.c.PAGE_SIZE;
    this.unsubscribe = k.trace.subscribe(
      (e) => this.onTrace(e),
      [
        'page_fault',
        'mmu_notifier_invalidate_range_start',
        'signal_generate',
        'devmem_free',
        'migrate_vma',
        'devmem_fault',
        'dma_copy',
      ],
    );
  }

  /** Bytes per ns a device's DMA copies move over its link. */
  linkBytesPerNs(device?: string): number {
    if (device === undefined || !this.linkOf) return this.costs.deviceCopyBytesPerNs;
    return this.costs.links[this.linkOf(device)] * this.costs.dmaEfficiency;
  }

  charge(ns: number): void {
    this.now += ns;
  }

  syscall(): void {
    this.now += this.costs.syscallNs;
  }

  userCopy(bytes: number): void {
    this.now += Math.ceil(bytes / this.costs.userCopyBytesPerNs);
  }

  /** A device's DMA copy, at its link's speed when `device` is named. */
  deviceCopy(bytes: number, device?: string): void {
    this.now += Math.ceil(bytes / this.linkBytesPerNs(device));
  }

  detach(): void {
    this.unsubscribe();
  }

  private onTrace(e: TraceEvent): void {
    switch (e.name) {
      case 'page_fault':
        this.now += this.costs.cpuFaultNs;
        break;
      case 'mmu_notifier_invalidate_range_start':
        this.now += this.costs.mmuNotifierNs;
        break;
      case 'signal_generate':
        this.now += this.costs.signalNs;
        break;
      case 'devmem_free':
        this.now += this.costs.devmemFreeNs;
        break;
      case 'migrate_vma':
        this.now += e.migrated * this.costs.unmapPageNs;
        break;
      case 'devmem_fault':
        // The driver's fault callback copied the page home over the device's link (a plugin's
        // copy engine charged it already, through dma_copy).
        if (e.result === 0 && !this.dmaTraced.has(e.device)) this.deviceCopy(this.pageSize, e.device);
        break;
      case 'dma_copy':
        this.dmaTraced.add(e.device);
        this.now += this.costs.dmaCopyNs;
        this.deviceCopy(e.bytes, e.device);
        break;
      default:
        break;
    }
  }
}

/** The link a device of the machine sits on: its own `link`, else the machine's, else PCIe 4.0. */
export function linkOf(machine: Machine, device: string): LinkKind {
  const cfg = machine.devices.get(device)?.config as { link?: LinkKind } | undefined;
  return cfg?.link ?? machine.spec.link ?? DEFAULT_LINK;
}

/** The virtual clock of a booted machine, with the machine file's costs and links. */
export function clockFor(machine: Machine): VirtualClock {
  return new VirtualClock(machine.kernel, machine.spec.costs ?? {}, (d) => linkOf(machine, d));
}
