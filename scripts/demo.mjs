// `npm run demo` (after scripts/build-e2e.sh): fs-sync end to end, on this machine.
//
//   1. starts fs-sync-dev (PostgreSQL + Supabase's REST, Storage and Realtime surfaces) and the edge
//      worker (fs-sync-edge, Rust → Wasm) in workerd via `wrangler dev`;
//   2. creates two users and a project holding a ~200-file Expo / React Native sample app, one
//      binary (a PNG uploaded to Storage) and two unicode names among them;
//   3. asks the edge for a container session (POST /sessions: snapshot + scoped token + env) and
//      runs fs-sync-hydrate with exactly that env into ./demo/container;
//   4. edits through the npm package @velocity/fs-sync from Node — save, a conflicting save,
//      delete, rename, bulk, a typing run — and times each change until it is in the folder;
//   5. prints a summary and stops everything it started (also on Ctrl-C).
//
// Options: --keep-running (leave it all up until Ctrl-C, to poke at ./demo/container).
// Logs: ./demo/logs/{fs-sync-hydrate,edge,fs-sync-dev}.log.
import { mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  root, descendants, comm, gone, until, startSystem, createProject, startAgent, waitInSync, fsClient,
  waitForFile, percentile, isApplied, putBinary, sampleApp, iconPng, importPackage,
} from '../tests/harness/index.mjs';

const keepRunning = process.argv.includes('--keep-running');
const demoDir = join(root, 'demo');
const target = join(demoDir, 'container');
const logDir = join(demoDir, 'logs');
const rel = (p) => `./${relative(root, p)}`;

// --- output -----------------------------------------------------------------------------------
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (s) => (color ? `\x1b[${code}m${s}\x1b[0m` : String(s));
const bold = paint(1);
const dim = paint(2);
const green = paint(32);
const red = paint(31);
const yellow = paint(33);
const cyan = paint(36);
const OK = green('✔');
const say = (s = '') => process.stdout.write(`${s}\n`);
const fmtMs = (v) => (v == null || Number.isNaN(v) ? '–' : v < 10 ? `${v.toFixed(1)} ms` : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);
const fmtKiB = (b) => (b < 1024 ? `${b} B` : `${(b / 1024).toFixed(b < 10 * 1024 ? 1 : 0)} KiB`);
// Terminal columns: East Asian wide characters and emoji take two; ANSI colour codes none.
const wide = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1faff}]/u;
const width = (t) => [...t.replace(/\x1b\[[0-9;]*m/g, '')].reduce((w, ch) => w + (wide.test(ch) ? 2 : 1), 0);
const pad = (s, n) => { const t = String(s); const w = width(t); return w >= n ? t : t + ' '.repeat(n - w); };
const section = (n, title) => { say(); say(`${bold(cyan(n))}  ${bold(title)}`); };

// --- lifecycle --------------------------------------------------------------------------------
let sys = null;
let agent = null;
let stopping = null;

async function stopAll() {
  stopping ??= (async () => {
    const before = descendants(process.pid);
    if (agent) {
      const exit = await agent.stop();
      if (exit.code !== 0) say(yellow(`  fs-sync-hydrate exited with ${JSON.stringify(exit)}`));
    }
    if (sys) {
      try { writeFileSync(join(logDir, 'edge.log'), sys.worker.output()); } catch { /* no folder */ }
      const exit = await sys.close();
      try { writeFileSync(join(logDir, 'fs-sync-dev.log'), sys.stack.stderr); } catch { /* no folder */ }
      if (exit.code !== 0) say(yellow(`  fs-sync-dev exited with ${JSON.stringify(exit)}`));
    }
    const left = () => before.filter((pid) => {
      const c = comm(pid);
      return c && !c.startsWith('npm') && !gone(pid);
    });
    await until('every process started to exit', () => left().length === 0, { timeoutMs: 5000, intervalMs: 100 })
      .catch(() => { /* reported below */ });
    return left().map((pid) => `${comm(pid)} (${pid})`);
  })();
  return stopping;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    if (stopping) return;
    say();
    say(yellow(`Interrupted (${sig}): stopping everything…`));
    const left = await stopAll();
    say(left.length ? red(`  still running: ${left.join(', ')}`) : `${OK} stopped cleanly`);
    process.exit(130);
  });
}

// --- the demo ---------------------------------------------------------------------------------
async function main() {
  const t0 = performance.now();
  say(bold('fs-sync demo') + dim(' — PostgreSQL is the truth; a container hydrates from a snapshot and follows every edit'));

  rmSync(demoDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });

  section('1', 'Start the local stack');
  let t = performance.now();
  sys = await startSystem();
  say(`   ${OK} ${pad('fs-sync-dev', 16)}${pad(sys.info.api_url, 26)}${dim('PostgreSQL 15 (ephemeral cluster) + REST, Storage, Realtime')}`);
  say(`   ${OK} ${pad('edge worker', 16)}${pad(sys.worker.url, 26)}${dim('fs-sync-edge (Rust → Wasm) in workerd via wrangler dev')}  ${dim(fmtMs(performance.now() - t))}`);

  section('2', 'Create a project');
  const app = sampleApp(200);
  const project = await createProject(sys, {
    name: 'Sample Expo app', app, editors: 1, emails: ['alice@demo.test', 'bob@demo.test'],
  });
  const [alice, bob] = project.users;
  const textBytes = app.files.reduce((s, f) => s + Buffer.byteLength(f.content), 0);
  say(`   ${OK} ${pad('users', 16)}${alice.email} ${dim('(owner)')}, ${bob.email} ${dim('(editor)')}`);
  say(`   ${OK} ${pad('sample app', 16)}${app.files.length + 1} files, ${fmtKiB(textBytes + app.binary.bytes.length)}: package.json, app.json, App.tsx, src/{components,screens,hooks,utils,…}`);
  say(`     ${pad('', 16)}${dim('binary')}  ${app.binary.path} (${fmtKiB(app.binary.bytes.length)} PNG → Storage, register_binary_file)`);
  say(`     ${pad('', 16)}${dim('unicode')} docs/guía-de-estilo.md, src/i18n/locales/日本語.json`);

  section('3', 'Hand the project to a container');
  const session = await sys.session(project.id);
  const snap = session.body.snapshot;
  const edgeLog = await sys.sessionLog(session.env.SESSION_ID).catch(() => null);
  const buildMs = edgeLog?.build_ms ?? null;
  say(`   ${OK} ${pad('POST /sessions', 16)}snapshot: ${snap.fileCount} files → ${fmtKiB(snap.size)} zip at seq ${snap.asOfSeq}, ${snap.reused ? 'reused' : `built in ${fmtMs(buildMs)}`}; request ${fmtMs(session.ms)}`);
  say(`     ${pad('', 16)}${dim('env:')} ${Object.keys(session.env).join(' ')}`);
  const envText = JSON.stringify(session.env);
  const clean = !envText.includes(sys.info.service_role_key) && !envText.includes(sys.info.jwt_secret);
  say(`     ${pad('', 16)}${clean ? dim('no service-role key, no JWT secret: a 15-minute read-only token for this project') : red('the env holds a secret!')}`);

  const agentLog = join(logDir, 'fs-sync-hydrate.log');
  agent = await startAgent(session.env, {
    target,
    onLine: (l) => appendFileSync(agentLog, `${JSON.stringify(l)}\n`),
  });
  const readyAt = await agent.waitReady();
  const m0 = await agent.metrics();
  const dl = agent.logs.find((l) => l.event_type === 'snapshot.downloaded');
  const ex = agent.logs.find((l) => l.event_type === 'snapshot.extracted');
  const hydrateMs = m0.hydrate_seconds * 1000;
  say(`   ${OK} ${pad('fs-sync-hydrate', 16)}${rel(target)} ready in ${fmtMs(hydrateMs)} ${dim(`(download + verify ${fmtMs(dl?.duration_ms)}, extract ${fmtMs(ex?.duration_ms)}); /healthz 200, /metrics on 127.0.0.1:${agent.port}`)}`);
  const first = await waitInSync(sys, project.id, agent, target);
  if (!first.diff.equal) throw new Error(`the hydrated folder differs from the database: ${JSON.stringify(first.diff)}`);
  say(`   ${OK} ${pad('check', 16)}${rel(target)} == list_current_files: ${first.expected.size} files, byte for byte (the PNG too)`);

  section('4', `Edit through @velocity/fs-sync (Node) and watch ${rel(target)}`);
  const pkg = await importPackage();
  const fsA = fsClient(pkg, sys, alice, project.id);
  const fsB = fsClient(pkg, sys, bob, project.id);
  await Promise.all([fsA.load(), fsB.load()]);
  const latencies = [];
  const row = (what, detail, result) => say(`   ${pad(what, 10)}${pad(detail, 58)}${result}`);

  /** Runs `edit`, then waits until every {path: content|null} of `want` holds in the folder. */
  async function timed(what, detail, edit, want) {
    const start = performance.now();
    const head = await edit();
    let end = start;
    for (const [p, content] of Object.entries(want)) end = Math.max(end, await waitForFile(target, p, content, 15_000));
    const ms = end - start;
    latencies.push(ms);
    const gone = Object.values(want).every((c) => c === null);
    const version = head?.version && !gone ? dim(`v${head.version}`) : '';
    const verb = gone ? 'gone' : 'in the folder';
    row(what, detail, `${pad(version, 4)} → ${verb} after ${bold(fmtMs(ms))}`);
    return head;
  }

  const home = 'src/screens/HomeScreen.tsx';
  const homeText = app.files.find((f) => f.path === home).content;
  const aliceHome = homeText.replace('Nothing here yet', 'Welcome back');
  await timed('save', `${home} ${dim('(alice)')}`, () => fsA.save(home, aliceHome), { [home]: aliceHome });

  const badge = 'src/components/Badge2.tsx';
  const badgeText = "export const Badge2 = ({ n }: { n: number }) => (n > 99 ? '99+' : String(n));\n";
  await timed('create', `${badge} ${dim('(alice)')}`, () => fsA.save(badge, badgeText), { [badge]: badgeText });

  // bob loaded before alice's save: his save names version 1, the head is 2.
  const bobHome = homeText.replace('Nothing here yet', 'Hello from bob');
  try {
    await fsB.save(home, bobHome);
    row('conflict', home, red('expected a conflict, but the save went through'));
  } catch (e) {
    if (e?.kind !== 'conflict') throw e;
    row('conflict', `${home} ${dim('(bob, editing version 1)')}`, `${yellow('refused')} ${dim('— nothing was overwritten')}`);
    say(`             ${dim('FsSyncError')} kind ${bold(e.kind)}, status ${e.status}, code ${e.code}, instanceof Error: ${e instanceof Error}`);
    say(`             ${dim('message')} ${e.message}`);
    const d = e.details ?? {};
    say(`             ${dim('details')} path ${d.path}, expected_version ${d.expected_version}, current_version ${d.current_version}, current_hash ${String(d.current_hash).slice(0, 12)}…`);
  }
  const merged = aliceHome.replace('Welcome back', 'Welcome back, from alice and bob');
  await timed('resolve', `${home} ${dim('(bob: catchUp(), merge, save)')}`, async () => {
    await fsB.catchUp();
    return fsB.save(home, merged);
  }, { [home]: merged });

  const ja = 'src/i18n/locales/日本語.json';
  const jaText = '{\n  "greeting": "こんにちは",\n  "farewell": "またね",\n  "cart": "カート"\n}\n';
  await timed('unicode', ja, () => fsA.save(ja, jaText), { [ja]: jaText });

  const catalog = 'src/data/catalog.json';
  const catalogText = `${JSON.stringify(Array.from({ length: 2400 }, (_, i) => ({ id: i, title: `Product ${i}`, price: +(i * 1.25).toFixed(2) })), null, 1)}\n`;
  await timed('large', `${catalog} ${dim(`(${fmtKiB(Buffer.byteLength(catalogText))}, fetched by the agent)`)}`, () => fsA.save(catalog, catalogText), { [catalog]: catalogText });

  await timed('delete', 'src/utils/legacy.ts', () => fsA.remove('src/utils/legacy.ts'), { 'src/utils/legacy.ts': null });

  const cardText = app.files.find((f) => f.path === 'src/components/Card.tsx').content;
  await timed('rename', 'src/components/Card.tsx → src/components/ui/Card.tsx',
    () => fsA.rename('src/components/Card.tsx', 'src/components/ui/Card.tsx'),
    { 'src/components/Card.tsx': null, 'src/components/ui/Card.tsx': cardText });
  await timed('rename', `${app.binary.path} → assets/images/icon.png ${dim('(the binary)')}`,
    () => fsB.rename(app.binary.path, 'assets/images/icon.png'),
    { [app.binary.path]: null, 'assets/images/icon.png': iconPng() });

  const splash = iconPng(128);
  await timed('binary', `assets/splash.png ${dim(`(${fmtKiB(splash.length)} PNG → Storage, registered)`)}`,
    () => putBinary(sys, project.id, alice, { path: 'assets/splash.png', bytes: splash, contentType: 'image/png' }),
    { 'assets/splash.png': splash });

  const bulk = [
    { path: 'src/features/settings/SettingsScreen.tsx', content: "export default function SettingsScreen() { return null; }\n" },
    { path: 'src/features/settings/useSettings.ts', content: 'export const useSettings = () => ({ dark: false });\n' },
    { path: 'src/features/settings/index.ts', content: "export * from './useSettings';\n" },
    { path: 'src/features/settings/strings.json', content: '{"title":"Settings","dark":"Dark mode"}\n' },
    { path: 'src/features/settings/README.md', content: '# Settings\n' },
    { path: 'src/utils/throttle.ts', delete: true },
  ];
  const bulkWant = Object.fromEntries(bulk.map((f) => [f.path, f.delete ? null : f.content]));
  await timed('bulk', `${bulk.length} files (5 writes, 1 delete) in one bulk:apply event`,
    async () => { await fsA.saveAll(bulk); return null; }, bulkWant);

  // Typing: one save after another, each waiting for the previous one to arrive.
  const typing = [];
  let appText = app.files.find((f) => f.path === 'App.tsx').content;
  for (let i = 1; i <= 40; i++) {
    appText = appText.replace(/(\n}\n)$/, `\n// keystroke ${i}$1`);
    const start = performance.now();
    await fsA.save('App.tsx', appText);
    const ms = (await waitForFile(target, 'App.tsx', appText, 15_000)) - start;
    typing.push(ms);
    latencies.push(ms);
  }
  row('typing', `App.tsx saved 40 times, each after the last arrived`, `     → p50 ${bold(fmtMs(percentile(typing, 50)))}, max ${fmtMs(Math.max(...typing))}`);

  const end = await waitInSync(sys, project.id, agent, target);
  if (!end.diff.equal) throw new Error(`the folder differs from the database: ${JSON.stringify(end.diff)}`);
  say(`   ${OK} ${pad('check', 10)}${rel(target)} == list_current_files: ${end.expected.size} files, byte for byte, at seq ${end.seq}`);

  // --- summary ---
  const m = await agent.metrics();
  const applied = agent.logs.filter(isApplied);
  const agentLag = applied.map((l) => l.lag_ms).filter((v) => typeof v === 'number');
  section('5', 'Summary');
  const line = (k, v, note = '') => say(`   ${pad(k, 36)}${pad(v, 12)}${dim(note)}`);
  line('snapshot build (edge, in workerd)', fmtMs(buildMs), `${snap.fileCount} files → ${fmtKiB(snap.size)} zip, stored in Storage`);
  line('session request (POST /sessions)', fmtMs(session.ms), 'snapshot + signed URL + container token');
  line('hydrate (agent start → ready)', fmtMs(hydrateMs), `download + verify ${fmtMs(dl?.duration_ms)}, extract ${fmtMs(ex?.duration_ms)}`);
  line('session request → /healthz 200', fmtMs(readyAt - agent.startedAt + session.ms), 'cold start as an orchestrator sees it');
  line('edit → in the folder, p50', bold(fmtMs(percentile(latencies, 50))), `n = ${latencies.length} edits, measured from Node (save() → file seen)`);
  line('edit → in the folder, p99', bold(fmtMs(percentile(latencies, 99))), `max ${fmtMs(Math.max(...latencies))}`);
  line('commit → applied (agent), p50', fmtMs(percentile(agentLag, 50)), `the agent's own event_lag, ms resolution (n = ${agentLag.length})`);
  line('agent counters', `${m.events_applied_total} events`, `catch-ups ${m.catchups_total}, reconnects ${m.reconnects_total}, skipped writes ${m.skipped_writes_total}, errors ${m.apply_errors_total}`);
  line('total demo time', fmtMs(performance.now() - t0));

  if (keepRunning) {
    say();
    say(`Running: fs-sync-dev ${sys.info.api_url}, edge ${sys.worker.url}, agent http://127.0.0.1:${agent.port}/metrics. Press Ctrl-C to stop.`);
    await new Promise(() => {});
  }
}

try {
  await main();
  say();
  const left = await stopAll();
  if (left.length) {
    say(red(`Still running after stop: ${left.join(', ')}`));
    process.exitCode = 1;
  } else {
    say(`${OK} Stopped fs-sync-hydrate, the edge worker (wrangler + workerd) and fs-sync-dev (+ PostgreSQL); no process left.`);
  }
  say(dim(`  The container folder stays in ${rel(target)}; logs in ${rel(logDir)}.`));
} catch (e) {
  say();
  say(red(`demo failed: ${e?.stack ?? e}`));
  if (agent) say(dim(`  agent log: ${rel(join(logDir, 'fs-sync-hydrate.log'))}`));
  await stopAll();
  process.exit(1);
}
