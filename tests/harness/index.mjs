// The one harness for the node tests, the benchmarks and the demo: it starts the system as real
// processes — fs-sync-dev (`startSystem({edge: false})`), plus the edge worker under
// `wrangler dev` (`startSystem()`), plus fs-sync-hydrate agents (`startAgent`) — creates users
// (`newUser`: {id, email, access_token, expires_at}) and projects (`createProject`), makes the
// calls (`call`, `rpc`, `client` for supabase-js, `fsClient` for @velocity/fs-sync), bundles
// with Metro and runs Hermes (`metroBundle`, `runHermes`, `compileHermes`), and waits
// for observable conditions with one polling helper, `until(label, predicate, {timeoutMs})`;
// fs-sync-dev's own doings are observable through `sys.faults()` (delivery counters).
// Every child it starts is stopped when the caller exits, however it exits.
export {
  root, freePort, until, profile, comm, descendants, gone, cpuSeconds, memory,
} from './processes.mjs';
export {
  startSystem, startWorker, testConfig, inspect, psql, rpc, postJson, newUser, createProject, call,
  putBinary, currentSeq, databaseFiles, client, subscribe,
} from './system.mjs';
export {
  startAgent, isApplied, readTree, compareFiles, waitInSync, waitForFile, fileSeen,
} from './agent.mjs';
export { fsClient, percentile, prng, burst, exactlyOnce } from './edits.mjs';
export { importPackage, installedConsumer, reactNativeEntry, pkgDir } from './pkg.mjs';
export { metroBundle, hermes, runHermes, compileHermes, compileHermesAsync } from './metro.mjs';
export { sampleApp, iconPng } from './sample-app.mjs';
export { launchChromium, serve, CONTENT_TYPES } from './browser.mjs';
