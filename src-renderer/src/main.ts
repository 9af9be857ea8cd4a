import { createApp } from 'vue';
import { createPinia } from 'pinia';
import AppShell from './AppShell.vue';
import { connectLab } from './api/client';
import { useLayoutStore } from './stores/layout';
import './styles/theme.css';

const app = createApp(AppShell);
app.use(createPinia());
useLayoutStore().connect(connectLab());
app.mount('#app');
