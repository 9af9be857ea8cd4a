// The simulator keeps the kernel's shape: hot loops built of many small helpers (page_count,
// pte_pfn, swp_type, ...), as mm/ is. V8 inlines at most 920 bytes of helpers' bytecode into
// one optimized function by default; the migration loops need more, and past that budget each
// helper is a call (docs/BENCHMARKS.md, "Migration, fourth pass"). The budget is raised once
// for the whole process from the module every kernel function depends on (kernel.ts), before
// any of them is optimized, so the CLI, the lab worker and Electron's main process run alike.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--max-inlined-bytecode-size-cumulative=2000');
