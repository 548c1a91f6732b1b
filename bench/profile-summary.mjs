#!/usr/bin/env node
// Summarises V8 .cpuprofile files (node --cpu-prof): self time by category and by function.
//
//   node bench/profile-summary.mjs FILE.cpuprofile... [--top 15]
import { parseArgs } from 'node:util';
import { formatSummary, summarise } from './lib/profile.mjs';

const { values: argv, positionals: files } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
if (!files.length) { console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile... [--top N]'); process.exit(2); }
for (const f of files) console.log(formatSummary(f, summarise(f, { top: Number(argv.top) })));
