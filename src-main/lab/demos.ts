// The demo workloads the Run view offers: scenarios whose steps set up processes and mappings
// and end in `run` workloads (docs/WORKLOADS.md). Each brings its own machine, so it runs the
// same anywhere. The GPUs of the first two are served by the bundled dmirror plugin
// (plugins/dmirror), whose `fault` command is the fault policy; the two-GPU demo keeps the
// built-in dmirror, the same policy in TypeScript: its random accesses fault page by page,
// which the sandboxed plugin serves several times slower (the demo would play for tens of
// seconds at full speed).
import type { RunDemo } from '../api';

/** One GPU of `memory` on PCIe 4.0, served by the dmirror plugin. */
function pluginGpu(memory: string) {
  return {
    ram: [{ start: 0, size: '2G' }],
    reserved: [],
    devices: [{ name: 'gpu0', kind: 'private', memory, link: 'pcie4', driver: 'plugin:dmirror' }],
  };
}

export const RUN_DEMOS: readonly RunDemo[] = [
  {
    id: 'oversubscription',
    title: 'Oversubscription: 256 MiB through a 128 MiB GPU',
    description:
      'A CPU thread fills 256 MiB, a GPU kernel streams through it twice on a 128 MiB device whose driver is the dmirror plugin (once the device is full, every fault batch evicts the pages migrated in longest ago), then the CPU reads it all back.',
    scenario: {
      name: 'oversubscription',
      seed: 1,
      machine: pluginGpu('128M'),
      steps: [
        { op: 'spawn', proc: 'app' },
        { op: 'open', proc: 'app', device: 'gpu0' },
        {
          op: 'mmap',
          proc: 'app',
          name: 'data',
          length: '256M',
          prot: 'rw',
          flags: ['private', 'anonymous'],
        },
        {
          op: 'run',
          workload: {
            name: 'fill',
            actors: [
              { kind: 'cpu', name: 'init', proc: 'app', at: 'data', pattern: 'sequential', writes: 1 },
            ],
          },
        },
        {
          op: 'run',
          workload: {
            name: 'gpu stream',
            actors: [
              {
                kind: 'device',
                name: 'kernel',
                device: 'gpu0',
                proc: 'app',
                at: 'data',
                pattern: 'sequential',
                writes: 0.5,
                accesses: 131072,
              },
            ],
          },
        },
        {
          op: 'run',
          workload: {
            name: 'check',
            actors: [
              { kind: 'cpu', name: 'check', proc: 'app', at: 'data', pattern: 'sequential', writes: 0 },
            ],
          },
        },
      ],
    },
  },
  {
    id: 'hotset',
    title: 'Shared hot set: CPU and GPU contend for 10% of 64 MiB',
    description:
      'A GPU kernel and a CPU thread touch the same 64 MiB buffer, 90% of their accesses on the same hot 10%: pages ping-pong between system and device memory (the dmirror plugin migrates what the GPU faults on, CPU faults bring pages home).',
    scenario: {
      name: 'hotset',
      seed: 7,
      machine: pluginGpu('256M'),
      steps: [
        { op: 'spawn', proc: 'app' },
        { op: 'open', proc: 'app', device: 'gpu0' },
        { op: 'mmap', proc: 'app', name: 'buf', length: '64M', prot: 'rw', flags: ['private', 'anonymous'] },
        {
          op: 'run',
          workload: {
            name: 'contention',
            actors: [
              {
                kind: 'device',
                name: 'kernel',
                device: 'gpu0',
                proc: 'app',
                at: 'buf',
                pattern: 'hotset',
                hotFraction: 0.1,
                hotProbability: 0.9,
                writes: 0.3,
                accesses: 200000,
              },
              {
                kind: 'cpu',
                name: 'thread',
                proc: 'app',
                at: 'buf',
                pattern: 'hotset',
                hotFraction: 0.1,
                hotProbability: 0.9,
                writes: 0.3,
                accesses: 40000,
                start: 2000000,
              },
            ],
          },
        },
      ],
    },
  },
  {
    id: 'two-gpus',
    title: 'Two processes, two GPUs (PCIe 4.0 and NVLink-C2C)',
    description:
      'Each process runs a kernel on its own device, one over PCIe 4.0, one over NVLink-C2C, with random accesses to 192 MiB on 128 MiB devices (the built-in dmirror evicts); the second then reads a strided share of its data from the CPU.',
    scenario: {
      name: 'two-gpus',
      seed: 3,
      machine: {
        ram: [{ start: 0, size: '2G' }],
        reserved: [],
        devices: [
          { name: 'gpu0', kind: 'private', memory: '128M', link: 'pcie4' },
          { name: 'gpu1', kind: 'private', memory: '128M', link: 'nvlink-c2c' },
        ],
      },
      steps: [
        { op: 'spawn', proc: 'a' },
        { op: 'spawn', proc: 'b' },
        { op: 'open', proc: 'a', device: 'gpu0' },
        { op: 'open', proc: 'b', device: 'gpu1' },
        { op: 'mmap', proc: 'a', name: 'x', length: '192M', prot: 'rw', flags: ['private', 'anonymous'] },
        { op: 'mmap', proc: 'b', name: 'y', length: '192M', prot: 'rw', flags: ['private', 'anonymous'] },
        {
          op: 'run',
          workload: {
            name: 'two kernels',
            actors: [
              {
                kind: 'device',
                device: 'gpu0',
                proc: 'a',
                at: 'x',
                pattern: 'random',
                writes: 0.5,
                accesses: 100000,
              },
              {
                kind: 'device',
                device: 'gpu1',
                proc: 'b',
                at: 'y',
                pattern: 'random',
                writes: 0.5,
                accesses: 100000,
              },
              {
                kind: 'cpu',
                proc: 'b',
                at: 'y',
                pattern: 'strided',
                stride: '64K',
                writes: 0,
                accesses: 12288,
                start: 20000000,
              },
            ],
          },
        },
      ],
    },
  },
];
