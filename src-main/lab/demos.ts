// The demo workloads the Run view offers: scenarios whose steps set up processes and mappings
// and end in `run` workloads (docs/WORKLOADS.md). Each brings its own machine, so it runs the
// same anywhere.
import type { RunDemo } from '../api';

const MACHINE_256M = {
  ram: [{ start: 0, size: '2G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '256M', link: 'pcie4' }],
};

export const RUN_DEMOS: readonly RunDemo[] = [
  {
    id: 'oversubscription',
    title: 'Oversubscription: 512 MiB through a 256 MiB GPU',
    description:
      'A CPU thread fills 512 MiB, a GPU kernel streams through it twice on a 256 MiB device (every batch evicts the least recently used pages), then the CPU reads it all back.',
    scenario: {
      name: 'oversubscription',
      seed: 1,
      machine: MACHINE_256M,
      steps: [
        { op: 'spawn', proc: 'app' },
        { op: 'open', proc: 'app', device: 'gpu0' },
        {
          op: 'mmap',
          proc: 'app',
          name: 'data',
          length: '512M',
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
                accesses: 262144,
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
      'A GPU kernel and a CPU thread touch the same 64 MiB buffer, 90% of their accesses on the same hot 10%: pages ping-pong between system and device memory.',
    scenario: {
      name: 'hotset',
      seed: 7,
      machine: MACHINE_256M,
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
      'Each process runs a kernel on its own device, one over PCIe 4.0, one over NVLink-C2C; the second then reads a strided share of its data from the CPU.',
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
