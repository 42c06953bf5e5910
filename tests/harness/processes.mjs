// Process plumbing for the harness: free ports, the one polling helper (`until`), the workspace's
// binaries, and stopping child processes (and their process groups) so nothing is left behind —
// not even when the caller is interrupted.
//
// Every long-running child is started detached (its own process group): a terminal's Ctrl-C
// reaches only the Node process, which then stops the children in order. `track()` registers a
// child so `killAllSync()` (called from an 'exit' handler) can SIGKILL whatever is still running.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Waits for an observable condition: polls `predicate()` (sync or async) every `intervalMs` until
 * it returns something truthy, and resolves with that. Rejects after `timeoutMs` naming `label`,
 * or at once when `proc` (a child process, optional) has exited — it will never get there.
 */
export async function until(label, predicate, { timeoutMs = 10_000, intervalMs = 20, proc = null } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (proc && exited(proc)) {
      throw new Error(`${label}: the process exited (${proc.exitCode ?? proc.signalCode})`);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await sleep(intervalMs);
  }
}

const live = new Set();
let exitHook = false;

/**
 * Registers a child for `killAllSync()`, which also runs when this process exits (a failed test,
 * an exception in a script): no tracked child outlives it. The child unregisters itself on exit.
 */
export function track(proc) {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', killAllSync);
  }
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

/** SIGKILLs every tracked child that is still running, with its process group. Synchronous. */
export function killAllSync() {
  for (const proc of live) {
    for (const target of [-proc.pid, proc.pid]) {
      try { process.kill(target, 'SIGKILL'); } catch { /* gone, or not a group leader */ }
    }
  }
  live.clear();
}

function exited(proc) {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/**
 * Stops a child and resolves its exit {code, signal}. `group`: send the signal to the child's
 * process group (it must have been started detached) rather than the child alone — right for a
 * launcher such as wrangler, wrong for a process that stops its own children in order (fs-sync-dev
 * and its PostgreSQL). After `graceMs` the whole group is SIGKILLed.
 */
export function stopProcess(proc, { signal = 'SIGTERM', group = false, graceMs = 20_000 } = {}) {
  return new Promise((resolve) => {
    if (!proc || exited(proc)) {
      resolve(proc ? { code: proc.exitCode, signal: proc.signalCode } : { code: null, signal: null });
      return;
    }
    const timer = setTimeout(() => {
      for (const target of [-proc.pid, proc.pid]) {
        try { process.kill(target, 'SIGKILL'); } catch { /* gone */ }
      }
    }, graceMs);
    proc.once('exit', (code, sig) => { clearTimeout(timer); resolve({ code, signal: sig }); });
    try {
      process.kill(group ? -proc.pid : proc.pid, signal);
    } catch {
      try { proc.kill(signal); } catch { /* gone */ }
    }
  });
}

/** The cargo profile the binaries come from: $FS_SYNC_PROFILE (debug or release), default debug. */
export function profile() {
  return process.env.FS_SYNC_PROFILE === 'release' ? 'release' : 'debug';
}

/**
 * A workspace binary: `$<envVar>` when set, else target/<profile>/<name>, built with cargo when it
 * is missing. (scripts/test.sh and scripts/build-e2e.sh build it first, so a stale one is rare.)
 */
export function workspaceBin(name, pkg = name, envVar = null) {
  if (envVar && process.env[envVar]) return process.env[envVar];
  const bin = join(root, 'target', profile(), name);
  if (!existsSync(bin)) {
    const args = ['build', '-q', '-p', pkg, ...(profile() === 'release' ? ['--release'] : [])];
    execFileSync('cargo', args, { cwd: root, stdio: 'inherit' });
  }
  return bin;
}

/** The fs-sync-dev binary ($FS_SYNC_DEV_BIN overrides). */
export function devstackBin() {
  return workspaceBin('fs-sync-dev', 'fs-sync-dev', 'FS_SYNC_DEV_BIN');
}

/** The fs-sync-hydrate binary ($FS_SYNC_HYDRATE_BIN overrides). */
export function hydrateBin() {
  return workspaceBin('fs-sync-hydrate', 'fs-sync-hydrate', 'FS_SYNC_HYDRATE_BIN');
}

/** The command name of a process ('' when it is gone). */
export function comm(pid) {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; }
}

/** Whether a process is gone or a zombie (exited, not yet reaped). */
export function gone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch { return true; }
}

/** Every descendant pid of `pid` (children, grandchildren, …), from /proc. */
export function descendants(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* exited */ }
  }
  const out = [];
  const stack = [pid];
  while (stack.length) {
    for (const c of children.get(stack.pop()) ?? []) { out.push(c); stack.push(c); }
  }
  return out;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** {rss, hwm} in bytes (current and peak resident set) of a process. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
