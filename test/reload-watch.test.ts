// Which file changes reload (src/reload.ts watchConfigFile), in process: edits in place of the
// file and of a symlink's target, a re-pointed symlink, a ConfigMap `..data` swap. Each change is
// followed by a second, distinct one as a sentinel: when the sentinel's reload has been seen, any
// extra reload of the first change (two watchers seeing it) would have been seen before it.
import t, { type Test } from 'tap';
import { watch, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { watchConfigFile } from '../src/reload.js';
import { waitFor } from './fixtures/wait.js';

const DEBOUNCE = 30;

/** Watches `file`, counting reloads; also counts the fs watchers it holds open. */
function watching(t: Test, file: string) {
  let reloads = 0;
  let open = 0;
  const counted = ((dir: string, listener: Parameters<typeof watch>[1]) => {
    const w = watch(dir, listener as never) as FSWatcher;
    open++;
    const close = w.close.bind(w);
    let closed = false;
    w.close = () => { if (!closed) { closed = true; open--; } close(); };
    return w;
  }) as unknown as typeof watch;
  const stop = watchConfigFile(file, () => { reloads++; }, { debounceMs: DEBOUNCE, watch: counted });
  t.teardown(stop);
  return {
    stop,
    reloads: () => reloads,
    open: () => open,
    /** Waits until `n` reloads in all were seen. */
    until: (n: number, what: string) => waitFor(() => reloads >= n, { timeoutMs: 10_000, what }),
  };
}

/** Edits `target` in place, then again as the sentinel: exactly one reload for each edit. */
async function editTwice(t: Test, w: ReturnType<typeof watching>, target: string, what: string): Promise<void> {
  writeFileSync(target, 'edited: 1\n');
  await w.until(1, what);
  writeFileSync(target, 'edited: 2\n');
  await w.until(2, 'the sentinel edit');
  t.equal(w.reloads(), 2, 'one reload per change');
}

t.test('a plain file edited in place reloads once per change', async (t) => {
  const dir = t.testdir({ 'gw.yaml': 'a: 1\n' });
  const file = join(dir, 'gw.yaml');
  const w = watching(t, file);
  await editTwice(t, w, file, 'the edit');
  t.equal(w.open(), 1, 'one directory watched');
});

t.test('a symlink whose target (in another directory) is edited in place reloads, once per change', async (t) => {
  const dir = t.testdir({ real: { 'gw.yaml': 'a: 1\n' }, etc: {} });
  const target = join(dir, 'real', 'gw.yaml');
  const file = join(dir, 'etc', 'gw.yaml');
  symlinkSync(target, file);
  const w = watching(t, file);
  t.equal(w.open(), 2, 'the link\'s directory and the target\'s');
  await editTwice(t, w, target, 'the edit of the target');
});

t.test('a re-pointed symlink is followed: the new target is watched, the old one no longer; no watcher leaks', async (t) => {
  const dir = t.testdir({ v1: { 'gw.yaml': 'v: 1\n' }, v2: { 'gw.yaml': 'v: 2\n' }, v3: { 'gw.yaml': 'v: 3\n' }, etc: {} });
  const file = join(dir, 'etc', 'gw.yaml');
  symlinkSync(join(dir, 'v1', 'gw.yaml'), file);
  const w = watching(t, file);
  const opened = w.open();
  t.equal(opened, 2);

  // Re-point atomically (a new link renamed over the old one), as deploy tools do.
  const repoint = (to: string) => {
    symlinkSync(join(dir, to, 'gw.yaml'), join(dir, 'etc', 'gw.yaml.tmp'));
    renameSync(join(dir, 'etc', 'gw.yaml.tmp'), file);
  };
  repoint('v2');
  await w.until(1, 'the re-pointed link');
  writeFileSync(join(dir, 'v2', 'gw.yaml'), 'v: 2b\n');
  await w.until(2, 'an edit in place of the new target');
  writeFileSync(join(dir, 'v1', 'gw.yaml'), 'v: 1b\n'); // the old target: no longer the config
  writeFileSync(join(dir, 'v2', 'gw.yaml'), 'v: 2c\n'); // sentinel
  await w.until(3, 'the sentinel edit');
  t.equal(w.reloads(), 3, 'the old target\'s edit did not reload');

  // Back and forth: the number of open watchers stays that of the directories in use.
  for (const [i, to] of (['v3', 'v1', 'v2', 'v3'] as const).entries()) {
    repoint(to);
    await w.until(4 + i, `re-pointed to ${to}`);
  }
  t.equal(w.open(), opened, 'watchers on directories no longer in use are closed');
  w.stop();
  t.equal(w.open(), 0, 'stopping closes every watcher');
});

t.test('a ConfigMap layout: the ..data swap reloads, and so does an edit in place of the current version', async (t) => {
  const dir = t.testdir({ '..v1': { 'gw.yaml': 'v: 1\n' }, '..v2': { 'gw.yaml': 'v: 2\n' } });
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync(join('..data', 'gw.yaml'), join(dir, 'gw.yaml'));
  const w = watching(t, join(dir, 'gw.yaml'));
  symlinkSync('..v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await w.until(1, 'the ..data swap');
  rmSync(join(dir, '..v1'), { recursive: true }); // kubelet removes the old version
  writeFileSync(join(dir, '..v2', 'gw.yaml'), 'v: 2b\n');
  await w.until(2, 'an edit in place of the current version');
  writeFileSync(join(dir, '..v2', 'gw.yaml'), 'v: 2c\n');
  await w.until(3, 'the sentinel edit');
  t.equal(w.reloads(), 3, 'one reload per change');
  t.equal(w.open(), 2, 'the mount directory and the current version\'s');
});

t.test('a symlink that dangles for a moment is followed again once it resolves', async (t) => {
  const dir = t.testdir({ v1: { 'gw.yaml': 'v: 1\n' }, etc: {} });
  const file = join(dir, 'etc', 'gw.yaml');
  symlinkSync(join(dir, 'v1', 'gw.yaml'), file);
  const w = watching(t, file);
  unlinkSync(file);
  mkdirSync(join(dir, 'v2'));
  writeFileSync(join(dir, 'v2', 'gw.yaml'), 'v: 2\n');
  symlinkSync(join(dir, 'v2', 'gw.yaml'), file);
  await w.until(1, 'the new link');
  writeFileSync(join(dir, 'v2', 'gw.yaml'), 'v: 2b\n');
  await w.until(2, 'an edit in place of the new target');
  t.equal(w.reloads(), 2);
});
