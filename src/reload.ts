// Configuration reload triggers and the one thing a reload cannot apply (listener settings).
// Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink in the file's
// directory, so the directory is watched, not the file: the file's own inode never changes.
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { GatewayConfig } from './config/types.js';
import { deepFreeze } from './config/schema.js';
import { listenerPublicUrl } from './config/sections/server.js';

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
 * `next` as the running process can apply it: listener settings stay those of `running` (the
 * listeners are bound for the life of the process), and a publicUrl the file does not set is
 * derived from the running listener's host and port, not from the ones in the new file, where
 * nothing listens. Everything else comes from `next`.
 */
export function keepListeners(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const server: Record<string, unknown> = { ...next.server };
  const admin: Record<string, unknown> = { ...next.admin };
  const target = { server, admin };
  for (const [section, key] of LISTENER_KEYS) {
    target[section][key] = (running[section] as unknown as Record<string, unknown>)[key];
  }
  if (!next.server.publicUrlSet) server.publicUrl = listenerPublicUrl(running.server.host, running.server.port);
  return deepFreeze({ ...next, server, admin }) as GatewayConfig;
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
