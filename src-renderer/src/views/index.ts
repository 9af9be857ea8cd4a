// The app's views, in nav order. Adding a view is one entry here.
import type { Component } from 'vue';
import LayoutView from './LayoutView.vue';

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
];
