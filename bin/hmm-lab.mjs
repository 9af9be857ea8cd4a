#!/usr/bin/env node
// The `hmm-lab` command. The lab is TypeScript; tsx compiles it on the fly.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src-main/hosts/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
