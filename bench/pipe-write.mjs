// What one write to a pipe costs the writer, by size, when the reader (`cat`, on the other CPU)
// sleeps between writes, as a container runtime's log reader does between access-log batches.
// The fixed part (waking the reader) decides the access log's batch size (src/log-writer.ts).
//
//   node bench/pipe-write.mjs [--sizes 4096,16384,49152,65536] [--gap-ms 3] [--seconds 3]
//
// The writer runs pinned to CPU 0, the reader to CPU 1 (Linux, taskset); tmpfs as the sink.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync, spawn } from 'node:child_process';
import { memoryDir } from './lib/proc.mjs';

const { values: argv } = parseArgs({ options: {
  sizes: { type: 'string', default: '4096,16384,49152,65536' },
  'gap-ms': { type: 'string', default: '3' },
  seconds: { type: 'string', default: '3' },
  child: { type: 'string' },
} });

if (argv.child !== undefined) {
  // The writer: fd 1 is the FIFO (non-blocking, as the gateway's stdout is).
  void process.stdout;
  const size = Number(argv.child);
  const buf = Buffer.alloc(size, 0x61);
  const gap = Number(argv['gap-ms']);
  const end = performance.now() + Number(argv.seconds) * 1000;
  let took = 0; let writes = 0; let partial = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    let n = 0;
    try { n = fs.writeSync(1, buf); } catch { n = 0; }
    took += performance.now() - t0;
    writes++;
    if (n < size) partial++;
    const until = performance.now() + gap; // the gateway's work between two batches
    while (performance.now() < until);
  }
  const us = (took / writes) * 1000;
  process.stderr.write(`| ${size} | ${us.toFixed(1)} | ${((us / size) * 16_000).toFixed(1)} | ${partial}/${writes} |\n`);
  process.exit(0);
}

const dir = memoryDir('pipe-write-', true);
const fifo = path.join(os.tmpdir(), `pipe-write-${process.pid}.fifo`);
console.log(`node ${process.version}; a write every ${argv['gap-ms']} ms for ${argv.seconds} s per size\n`);
console.log('| bytes per write | µs per write | µs per 16,000 bytes | partial writes |\n|---:|---:|---:|---:|');
for (const size of argv.sizes.split(',').map(Number)) {
  fs.rmSync(fifo, { force: true });
  execFileSync('mkfifo', [fifo]);
  const sink = fs.openSync(path.join(dir, 'out'), 'w');
  const reader = spawn('taskset', ['-c', '1', 'cat', fifo], { stdio: ['ignore', sink, 'inherit'] });
  const out = fs.openSync(fifo, 'w'); // waits for the reader to open it
  const writer = spawn('taskset', ['-c', '0', process.execPath, fileURLToPathSelf(), '--child', String(size), '--gap-ms', argv['gap-ms'], '--seconds', argv.seconds], { stdio: ['ignore', out, 'pipe'] });
  fs.closeSync(out);
  let row = '';
  writer.stderr.on('data', (d) => { row += d; });
  await new Promise((r) => writer.once('exit', r));
  process.stdout.write(row);
  await new Promise((r) => reader.once('exit', r));
  fs.closeSync(sink);
}
fs.rmSync(fifo, { force: true });
fs.rmSync(dir, { recursive: true, force: true });

function fileURLToPathSelf() { return new URL(import.meta.url).pathname; }
