// The app's views, in nav order. Adding a view is one entry here.
import type { Component } from 'vue';
import LayoutView from './LayoutView.vue';
import ProcessesView from './ProcessesView.vue';

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
];
