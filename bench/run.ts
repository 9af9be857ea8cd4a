// `hmm-lab bench`: run each benchmark several times in fresh processes and report
// medians. Benchmarks measure; tests never time anything.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface BootFigures {
  bootMs: number;
  pages: number;
  heapBytesPerPage: number;
  arrayBytesPerPage: number;
  rssBytes: number;
}

export interface BenchReport {
  machine: { node: string; platform: string; cpus: number };
  runs: number;
  boot: BootFigures;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function runChild(script: string): BootFigures {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', path], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as BootFigures;
}

export async function runBenchmarks(opts: {
  runs: number;
  progress: (s: string) => void;
}): Promise<BenchReport> {
  const { cpus } = await import('node:os');
  const boots: BootFigures[] = [];
  for (let i = 0; i < opts.runs; i++) {
    opts.progress(`boot 64 GiB RAM + 64 GiB device memory: run ${i + 1}/${opts.runs}`);
    boots.push(runChild('./boot.ts'));
  }
  const pick = (f: keyof BootFigures): number => median(boots.map((b) => b[f]));
  return {
    machine: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length },
    runs: opts.runs,
    boot: {
      bootMs: pick('bootMs'),
      pages: pick('pages'),
      heapBytesPerPage: pick('heapBytesPerPage'),
      arrayBytesPerPage: pick('arrayBytesPerPage'),
      rssBytes: pick('rssBytes'),
    },
  };
}

export function formatReport(r: BenchReport): string {
  const b = r.boot;
  return [
    `node ${r.machine.node} on ${r.machine.platform}, ${r.machine.cpus} cpus; medians of ${r.runs} runs`,
    '',
    '| benchmark | figure |',
    '|---|---|',
    `| boot 64 GiB RAM + 64 GiB device (${b.pages} struct pages) | ${b.bootMs.toFixed(0)} ms |`,
    `| memmap: JS heap per page | ${b.heapBytesPerPage.toFixed(2)} B |`,
    `| memmap: typed arrays per page (reserved) | ${b.arrayBytesPerPage.toFixed(1)} B |`,
    `| resident set after boot | ${(b.rssBytes / 2 ** 20).toFixed(0)} MiB |`,
  ].join('\n');
}
