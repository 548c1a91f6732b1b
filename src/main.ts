#!/usr/bin/env node
// The executable. V8 settings first (src/runtime-tuning.ts), then the CLI (src/cli.ts) is loaded:
// loading the gateway's modules is one synchronous burst of allocation, which would grow the young
// generation past the size the tuning holds it to.
import { applyRuntimeTuning } from './runtime-tuning.js';

applyRuntimeTuning();
const { run } = await import('./cli.js');
run();
