#!/usr/bin/env node
// The executable. glibc's and V8's settings first (src/runtime-tuning.ts: the process may
// re-execute itself once, in place, for glibc's), then the CLI (src/cli.ts) is loaded:
// loading the gateway's modules is one synchronous burst of allocation, which would grow the young
// generation past the size the tuning holds it to.
import { applyRuntimeTuning, reexecWithMallocTuning } from './runtime-tuning.js';

reexecWithMallocTuning();
applyRuntimeTuning();
const { run } = await import('./cli.js');
run();
