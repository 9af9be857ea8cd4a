// The Run view's plots from the lab's aggregated series: uPlot options and aligned data, nothing
// computed about the kernel. Options depend only on which lines exist (their key), so a new
// series event replaces the data without rebuilding the chart.
import uPlot from 'uplot';
import type { RunPlot, RunSeries } from '../api/lab';
import { formatNs, PROCESS_COLORS } from '../processes/format';

export type PlotOptions = Omit<uPlot.Options, 'width' | 'height'>;

export interface PlotSpec {
  plot: RunPlot;
  title: string;
  /** Changes only when the set of lines does: the options are rebuilt then, and only then. */
  key: string;
  build: () => PlotOptions;
  data: uPlot.AlignedData;
  /** The x value of point i as people read it (a time, or a latency bucket). */
  xLabel: (x: number, i: number) => string;
  /** The plot has something to draw. */
  filled: boolean;
  /** What the legend reads when the cursor is away (default: the last point). */
  idle?: { x: string; values: number[] };
}

export const DEVICE_COLORS = ['#6d45d6', '#cf7a20', '#1f8a8a', '#c23b40'];
const CPU_COLOR = '#2f9461';
const AXIS = {
  stroke: '#5d6778',
  grid: { stroke: '#eef0f4' },
  ticks: { stroke: '#e1e4ea' },
  font: '11px system-ui, sans-serif',
  labelFont: '11px system-ui, sans-serif',
};

interface Line {
  label: string;
  color: string;
  dash?: number[];
  fill?: string;
}

const deviceColor = (i: number): string => DEVICE_COLORS[i % DEVICE_COLORS.length]!;

function count(v: number): string {
  if (Math.abs(v) >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (Math.abs(v) >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Math.round(v * 100) / 100);
}

/** Options for a plot over simulated time. */
function timeOptions(lines: Line[], yLabel: string, stepped: boolean): PlotOptions {
  const paths = stepped ? uPlot.paths.stepped!({ align: 1 }) : undefined;
  return {
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(4, max * 1.1)] } },
    axes: [
      { ...AXIS, size: 26, values: (_u, splits) => splits.map((v) => formatNs(v)) },
      { ...AXIS, size: 46, label: yLabel, labelSize: 14, values: (_u, splits) => splits.map(count) },
    ],
    series: [
      {},
      ...lines.map((l) => ({
        label: l.label,
        stroke: l.color,
        width: 1.75,
        points: { show: false },
        ...(paths && { paths }),
        ...(l.dash && { dash: l.dash }),
        ...(l.fill && { fill: l.fill }),
      })),
    ],
  };
}

function timeSpec(
  plot: RunPlot,
  title: string,
  s: RunSeries,
  lines: Line[],
  ys: (number | null)[][],
  yLabel: string,
  stepped: boolean,
): PlotSpec {
  return {
    plot,
    title,
    key: `${plot}|${lines.map((l) => l.label).join('|')}`,
    build: () => timeOptions(lines, yLabel, stepped),
    data: [s.t, ...ys] as uPlot.AlignedData,
    xLabel: (x) => `t ${formatNs(x)}`,
    filled: s.t.length > 1 && ys.some((y) => y.some((v) => !!v)),
  };
}

export function migrationsPlot(s: RunSeries): PlotSpec {
  const lines: Line[] = [];
  const ys: number[][] = [];
  s.devices.forEach((d, i) => {
    lines.push({ label: `${d.name} → device`, color: deviceColor(i) });
    lines.push({ label: `${d.name} → system`, color: deviceColor(i), dash: [5, 3] });
    ys.push(d.toDevice, d.toSystem);
  });
  return timeSpec('migrations', `Migrations / ${formatNs(s.bucketNs)}`, s, lines, ys, 'pages', true);
}

export function cumulativePlot(s: RunSeries): PlotSpec {
  const lines: Line[] = [];
  const ys: number[][] = [];
  s.devices.forEach((d, i) => {
    lines.push({ label: `${d.name} → device`, color: deviceColor(i) });
    lines.push({ label: `${d.name} → system`, color: deviceColor(i), dash: [5, 3] });
    ys.push(d.toDeviceTotal, d.toSystemTotal);
  });
  return timeSpec('cumulative', 'Migrations, total', s, lines, ys, 'pages', false);
}

export function faultsPlot(s: RunSeries): PlotSpec {
  const lines: Line[] = [
    { label: 'CPU faults', color: CPU_COLOR },
    { label: 'device faults', color: DEVICE_COLORS[0]! },
  ];
  return timeSpec(
    'faults',
    `Faults / ${formatNs(s.bucketNs)}`,
    s,
    lines,
    [s.cpuFaults, s.deviceFaults],
    'faults',
    true,
  );
}

export function occupancyPlot(s: RunSeries): PlotSpec {
  const lines: Line[] = [];
  const ys: number[][] = [];
  s.devices.forEach((d, i) => {
    lines.push({ label: `${d.name} in use`, color: deviceColor(i), fill: `${deviceColor(i)}22` });
    lines.push({ label: `${d.name} size`, color: '#a2abba', dash: [2, 3] });
    ys.push(
      d.occupancy,
      s.t.map(() => d.pages),
    );
  });
  return timeSpec('occupancy', 'Device memory', s, lines, ys, 'pages', true);
}

const RSS_DASH: Record<string, number[] | undefined> = {
  anon: undefined,
  file: [6, 4],
  shmem: [2, 3],
  swapents: [8, 3, 2, 3],
};

export function rssPlot(s: RunSeries): PlotSpec {
  const lines: Line[] = [];
  const ys: (number | null)[][] = [];
  s.rss.forEach((p, i) => {
    for (const c of ['anon', 'file', 'shmem', 'swapents'] as const) {
      const ys1 = p.counters[c];
      if (c !== 'anon' && !ys1.some((v) => !!v)) continue;
      const dash = RSS_DASH[c];
      lines.push({
        label: `${p.proc} ${c}`,
        color: PROCESS_COLORS[i % PROCESS_COLORS.length]!,
        ...(dash && { dash }),
      });
      ys.push(ys1);
    }
  });
  return timeSpec('rss', 'rss per process', s, lines, ys, 'pages', true);
}

/** The fault latency histogram: the buckets from the first to the last that holds a fault. */
export function latencyPlot(s: RunSeries): PlotSpec {
  const { edges, cpu, device } = s.latency;
  const used = edges.map((_, i) => cpu[i]! + device[i]!);
  let lo = used.findIndex((v) => v > 0);
  let hi = used.length - 1 - [...used].reverse().findIndex((v) => v > 0);
  if (lo < 0) {
    lo = 0;
    hi = 0;
  }
  lo = Math.max(0, lo - 1);
  hi = Math.min(edges.length - 1, hi + 1);
  const xs = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const label = (i: number): string => {
    const from = edges[i]!;
    const to = edges[i + 1];
    return to === undefined ? `≥ ${formatNs(from)}` : `${formatNs(from)} – ${formatNs(to)}`;
  };
  const bars = (align: -1 | 1): uPlot.Series.PathBuilder => uPlot.paths.bars!({ size: [0.45, 40], align });
  return {
    plot: 'latency',
    title: 'Fault latency',
    key: 'latency',
    build: () => ({
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: { time: false, range: (_u, min, max) => [min - 0.6, max + 0.6] },
        y: { range: (_u, _min, max) => [0, Math.max(4, max * 1.1)] },
      },
      axes: [
        {
          ...AXIS,
          size: 26,
          // One label per octave at most, about four across the plot.
          splits: (u) => {
            const d = u.data[0] as number[];
            const step = 4 * Math.max(1, Math.ceil(d.length / 16));
            return d.filter((i) => (i - 1) % step === 0);
          },
          values: (_u, splits) => splits.map((i) => formatNs(edges[i] ?? 0)),
        },
        { ...AXIS, size: 46, label: 'faults', labelSize: 14, values: (_u, splits) => splits.map(count) },
      ],
      series: [
        {},
        {
          label: 'CPU faults',
          stroke: CPU_COLOR,
          fill: `${CPU_COLOR}bb`,
          width: 1,
          paths: bars(-1),
          points: { show: false },
        },
        {
          label: 'device faults',
          stroke: DEVICE_COLORS[0]!,
          fill: `${DEVICE_COLORS[0]!}bb`,
          width: 1,
          paths: bars(1),
          points: { show: false },
        },
      ],
    }),
    data: [xs, xs.map((i) => cpu[i]!), xs.map((i) => device[i]!)],
    xLabel: (x) => label(x),
    filled: used.some((v) => v > 0),
    idle: { x: 'all faults', values: [sum(cpu), sum(device)] },
  };
}

function sum(a: number[]): number {
  return a.reduce((x, y) => x + y, 0);
}

export const PLOTS: readonly ((s: RunSeries) => PlotSpec)[] = [
  migrationsPlot,
  cumulativePlot,
  faultsPlot,
  latencyPlot,
  rssPlot,
  occupancyPlot,
];
