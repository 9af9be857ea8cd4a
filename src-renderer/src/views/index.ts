// The app's views, in nav order. Adding a view is one entry here.
import type { Component } from 'vue';
import LayoutView from './LayoutView.vue';
import ProcessesView from './ProcessesView.vue';
import MirrorView from './MirrorView.vue';
import RunView from './RunView.vue';
import DriversView from './DriversView.vue';

export interface LabView {
  /** The URL hash (#/id) that opens the view. */
  id: string;
  title: string;
  /** One line under the title. */
  subtitle: string;
  /** SVG path data drawn in a 24x24 box, stroked. */
  icon: string;
  component: Component;
}

export const views: readonly LabView[] = [
  {
    id: 'layout',
    title: 'Layout',
    subtitle: 'Physical address space: iomem resources, ZONE_DEVICE hotplug and memory sections',
    icon: 'M4 3h16v4H4zM4 10h16v4H4zM4 17h16v4H4z',
    component: LayoutView,
  },
  {
    id: 'processes',
    title: 'Processes',
    subtitle: 'Address spaces: vmas, rss over simulated time, and the page-table entry behind every page',
    icon: 'M4 5h7v6H4zM13 5h7v6h-7zM4 13h7v6H4zM15 14h3M15 18h3M16.5 12.5v7',
    component: ProcessesView,
  },
  {
    id: 'mirror',
    title: 'Mirror',
    subtitle:
      "A device's mirror of a process: the CPU and device page tables side by side, and every invalidation",
    icon: 'M3 5h7v14H3zM14 5h7v14h-7zM10 9h4M10 15h4',
    component: MirrorView,
  },
  {
    id: 'run',
    title: 'Run',
    subtitle:
      'Workloads on the virtual clock: migrations, faults, fault latency, rss and device memory as they happen',
    icon: 'M3 12h4l3-7 4 14 3-7h4',
    component: RunView,
  },
  {
    id: 'drivers',
    title: 'Drivers',
    subtitle:
      'Device drivers as TypeScript plugins: edit, load into the running lab, run, and see where they fault',
    icon: 'M8 6l-5 6 5 6M16 6l5 6-5 6M13.5 4l-3 16',
    component: DriversView,
  },
];
