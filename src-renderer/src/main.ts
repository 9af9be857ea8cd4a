import { createApp } from 'vue';
import { createPinia } from 'pinia';
import AppShell from './AppShell.vue';
import { connectLab } from './api/client';
import { useLayoutStore } from './stores/layout';
import { useProcessStore } from './stores/processes';
import './styles/theme.css';

const app = createApp(AppShell);
app.use(createPinia());
const lab = connectLab();
useLayoutStore().connect(lab);
useProcessStore().connect(lab);
app.mount('#app');
