// Configuration reload triggers and the one thing a reload cannot apply (listener settings).
// Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink in the file's
// directory, so the directory is watched, not the file: the file's own inode never changes.
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { GatewayConfig } from './config/types.js';

/** Settings bound when the listeners start: a reload reports them instead of applying them. */
const LISTENER_KEYS = [
  ['server', 'host'], ['server', 'port'], ['server', 'maxHeaderBytes'], ['server', 'headersTimeoutMs'],
  ['server', 'requestTimeoutMs'], ['server', 'keepAliveTimeoutMs'], ['admin', 'host'], ['admin', 'port'],
] as const;

/** Key paths of listener settings that differ between `running` and `next`. */
export function listenerChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  const out: string[] = [];
  for (const [section, key] of LISTENER_KEYS) {
    const a = (running[section] as unknown as Record<string, unknown>)[key];
    const b = (next[section] as unknown as Record<string, unknown>)[key];
    if (!isDeepStrictEqual(a, b)) out.push(`${section}.${key}`);
  }
  return out;
}

/**
 * Calls `onChange` (debounced by `debounceMs`) when the content of `file` changes: edits in
 * place, atomic renames, and ConfigMap symlink swaps. Returns a function that stops watching.
 */
export function watchConfigFile(file: string, onChange: () => void, debounceMs = 200): () => void {
  const read = (): string | null => { try { return readFileSync(file, 'utf8'); } catch { return null; } };
  let last = read();
  let timer: NodeJS.Timeout | null = null;
  const name = basename(file);
  const fire = () => {
    timer = null;
    const now = read();
    if (now === null || now === last) return; // mid-swap, or touched without a change
    last = now;
    onChange();
  };
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(file), (_event, changed) => {
      // ConfigMaps change `..data` (and the timestamped directory), not the file name itself.
      if (changed !== null && changed !== name && !changed.startsWith('..')) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(fire, debounceMs);
      timer.unref();
    });
    watcher.on('error', () => { /* the directory went away: SIGHUP still works */ });
    watcher.unref();
  } catch {
    // Watching is not supported here: SIGHUP still works.
  }
  return () => { if (timer !== null) clearTimeout(timer); watcher?.close(); };
}
