// Configuration reload triggers and the one thing a reload cannot apply (listener settings).
// Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink in the file's
// directory, so directories are watched, not the file: the file's own inode never changes. A
// config path that is a symlink is followed: its target's directory is watched too, so an edit
// in place of the target reloads as well.
import { lstatSync, readFileSync, readlinkSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { GatewayConfig } from './config/types.js';
import { deepFreeze } from './config/schema.js';
import { maxTokenBytesWithin } from './config/defaults.js';
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
 * listeners are bound for the life of the process), and a default that follows one is derived
 * from the running listener, not from the new file's, which is not applied: a publicUrl the file
 * does not set from the running host and port, a tokens.maxTokenBytes it does not set from the
 * running maxHeaderBytes. Everything else comes from `next`.
 */
export function keepListeners(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const server: Record<string, unknown> = { ...next.server };
  const admin: Record<string, unknown> = { ...next.admin };
  const target = { server, admin };
  for (const [section, key] of LISTENER_KEYS) {
    target[section][key] = (running[section] as unknown as Record<string, unknown>)[key];
  }
  if (!next.server.publicUrlSet) server.publicUrl = listenerPublicUrl(running.server.host, running.server.port);
  const tokens = next.tokens.maxTokenBytesSet ? next.tokens : { ...next.tokens, maxTokenBytes: maxTokenBytesWithin(running.server.maxHeaderBytes) };
  return deepFreeze({ ...next, server, admin, tokens }) as GatewayConfig;
}

/**
 * The directories whose changes can change what `file` reads, each with the entry names that
 * matter there: the file's own directory, the directory of every symlink on the way to the real
 * file, and the real file's (so an edit in place of a symlink's target is seen too). Keyed by
 * the directory's real path, so one directory reached two ways is watched once.
 */
export function watchedPlaces(file: string): Map<string, Set<string>> {
  const places = new Map<string, Set<string>>();
  const add = (p: string) => {
    let dir = dirname(p);
    try { dir = realpathSync(dir); } catch { /* gone mid-swap: watch it by name */ }
    let names = places.get(dir);
    if (names === undefined) places.set(dir, names = new Set());
    names.add(basename(p));
  };
  let p = resolve(file);
  for (let hop = 0; hop < 32; hop++) { // the kernel's own limit on symlink hops is 40
    add(p);
    let target: string;
    try {
      if (!lstatSync(p).isSymbolicLink()) break;
      target = readlinkSync(p);
    } catch {
      break;
    }
    p = resolve(dirname(p), target);
  }
  try { add(realpathSync(file)); } catch { /* dangling mid-swap: the next event looks again */ }
  return places;
}

export interface WatchOptions {
  /** Quiet period after the last event before the file is read again (ms). Default 200. */
  debounceMs?: number;
  /** Tests: stands in for fs.watch. */
  watch?: typeof watch;
}

/**
 * Calls `onChange` (debounced) when the content of `file` changes: edits in place (of the file
 * or, when it is a symlink, of its target), atomic renames, a symlink re-pointed, and ConfigMap
 * symlink swaps. Directories are watched, not files (an inode that is replaced is not followed);
 * after every change the symlinks are followed again, and watchers on directories that no longer
 * lead to the file are closed. One change seen by several watchers reloads once (one debounce
 * timer; an unchanged content does not reload). Returns a function that stops watching.
 */
export function watchConfigFile(file: string, onChange: () => void, opts: WatchOptions = {}): () => void {
  const debounceMs = opts.debounceMs ?? 200;
  const watchDir = opts.watch ?? watch;
  const read = (): string | null => { try { return readFileSync(file, 'utf8'); } catch { return null; } };
  let last = read();
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const watchers = new Map<string, { names: Set<string>; watcher: FSWatcher }>();

  const onEvent = (names: () => Set<string>) => (_event: string, changed: string | Buffer | null) => {
    const name = changed === null ? null : changed.toString();
    // ConfigMaps change `..data` (and the timestamped directory), not the file name itself.
    if (name !== null && !names().has(name) && !name.startsWith('..')) return;
    if (stopped) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
    timer.unref();
  };

  /** Watch exactly the directories that lead to the file now. */
  const follow = () => {
    const places = watchedPlaces(file);
    for (const [dir, w] of watchers) {
      if (!places.has(dir)) { w.watcher.close(); watchers.delete(dir); }
    }
    for (const [dir, names] of places) {
      const known = watchers.get(dir);
      if (known !== undefined) { known.names = names; continue; }
      try {
        const entry = { names, watcher: null as unknown as FSWatcher };
        entry.watcher = watchDir(dir, onEvent(() => entry.names));
        entry.watcher.on('error', () => { /* the directory went away: the next change follows again; SIGHUP still works */ });
        entry.watcher.unref();
        watchers.set(dir, entry);
      } catch {
        // Cannot watch it (gone, or not supported here): retried on the next change; SIGHUP still works.
      }
    }
  };

  const fire = () => {
    timer = null;
    if (stopped) return;
    follow(); // a re-pointed symlink: watch its new target (and stop watching the old one)
    const now = read();
    if (now === null || now === last) return; // mid-swap, or touched without a change
    last = now;
    onChange();
  };

  follow();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    for (const w of watchers.values()) w.watcher.close();
    watchers.clear();
  };
}
