// The operations artefacts in ops/: the Prometheus rules pass `promtool check rules` and their unit
// tests (`promtool test rules`, synthetic series); every PromQL expression in the rules and in the
// Grafana dashboard names only series that a running fs-sync-hydrate exports on /metrics (or that
// the rules record); the dashboard is a structurally valid Grafana dashboard whose Analytics Engine
// panels read the edge's dataset and data-point columns as edge/ defines them.
//
// There is no maintained JSON Schema for Grafana's dashboard model on npm (@grafana/schema ships
// TypeScript types generated from CUE, not a JSON Schema), so the dashboard check is structural.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { parse as parseYaml } from 'yaml';
import { root, until, startAgent } from '../harness/index.mjs';

const promDir = join(root, 'ops/prometheus');
const rulesFile = join(promDir, 'fs-sync.rules.yml');
const rulesTestFile = join(promDir, 'fs-sync.rules.test.yml');
const dashboardFile = join(root, 'ops/grafana/fs-sync.json');

const rules = parseYaml(readFileSync(rulesFile, 'utf8'));
const allRules = rules.groups.flatMap((g) => g.rules);
const alertNames = allRules.filter((r) => r.alert).map((r) => r.alert);
const recorded = new Set(allRules.filter((r) => r.record).map((r) => r.record));
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8'));

/** promtool with `args` in ops/prometheus: {code, out}. Throws a clear error when it is missing. */
function promtool(...args) {
  const r = spawnSync('promtool', args, { cwd: promDir, encoding: 'utf8' });
  if (r.error?.code === 'ENOENT') {
    throw new Error("promtool is missing: install Debian's `prometheus` package "
      + '(apt-get install -y --no-install-recommends prometheus; scripts/bootstrap.sh does it as root)');
  }
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);

/**
 * The metric names a PromQL expression selects (promtool has parsed it already). Strings, label
 * matchers, ranges, grouping label lists and Grafana's `$variables` are removed first; what is
 * left that is an identifier not followed by `(` and not an operator keyword is a metric name.
 */
function metricNames(expr) {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{?\w+\}?/g, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set();
  for (const m of s.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[1].toLowerCase())) names.add(m[1]);
  }
  return names;
}

/** Series names in a Prometheus text exposition: its samples, and each TYPE line's family with its histogram series. */
function exportedNames(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    const type = line.match(/^# TYPE (\S+) (\w+)/);
    if (type) {
      names.add(type[1]);
      if (type[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(type[1] + s);
    } else if (line && !line.startsWith('#')) {
      names.add(line.match(/^[a-zA-Z_:][\w:]*/)[0]);
    }
  }
  return names;
}

/**
 * The series a running fs-sync-hydrate exports: its Supabase, snapshot and edge URLs point at a
 * local listener that accepts connections and never answers, so the agent stays before its first
 * join while its metrics server (started first) answers. Every metric is registered at start.
 */
async function agentExports() {
  const held = new Set();
  const blackhole = createServer((sock) => { held.add(sock); sock.on('close', () => held.delete(sock)); });
  await new Promise((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${blackhole.address().port}`;
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-ops-'));
  const projectId = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  // Shaped like the edge's container token; nothing ever verifies it here.
  const token = await new SignJWT({ role: 'fsync_container', project_id: projectId, session_id: 'ops-test', scope: 'fsync:read' })
    .setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + 900)
    .sign(randomBytes(32));
  let agent;
  try {
    agent = await startAgent({
      PROJECT_ID: projectId,
      SESSION_ID: 'ops-test',
      SNAPSHOT_URL: `${url}/snapshot.zip`,
      SNAPSHOT_SHA256: '0'.repeat(64),
      SUPABASE_URL: url,
      SUPABASE_ANON_KEY: 'anon',
      REALTIME_TOKEN: token,
      TOKEN_EXPIRES_AT: String(now + 900),
      EDGE_URL: url,
    }, { target: join(dir, 'project'), stateDir: join(dir, 'state') });
    const text = await until('fs-sync-hydrate /metrics', async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${agent.port}/metrics`);
        return r.status === 200 ? r.text() : null;
      } catch {
        return null;
      }
    }, { timeoutMs: 30_000, proc: agent.proc });
    return exportedNames(text);
  } finally {
    await agent?.stop();
    for (const sock of held) sock.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Asserts the structure Grafana needs to import and render `d` (throws an AssertionError). */
function checkDashboard(d) {
  assert.equal(typeof d.title, 'string');
  assert.equal(d.uid, 'fs-sync');
  assert.ok(Number.isInteger(d.schemaVersion) && d.schemaVersion >= 36, 'schemaVersion');
  assert.equal(d.id, null, 'id is null so that an import creates the dashboard');
  const vars = new Map(d.templating.list.map((v) => [v.name, v]));
  for (const name of ['datasource', 'analytics', 'project', 'session']) assert.ok(vars.has(name), `variable ${name}`);
  assert.equal(vars.get('datasource').query, 'prometheus');
  assert.equal(vars.get('analytics').query, 'vertamedia-clickhouse-datasource');

  const ids = new Set();
  const cells = new Set();
  for (const p of d.panels) {
    assert.ok(typeof p.type === 'string' && p.type, `panel ${p.id}: type`);
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    const g = p.gridPos;
    assert.ok(g && [g.h, g.w, g.x, g.y].every(Number.isInteger) && g.x >= 0 && g.x + g.w <= 24 && g.h > 0,
      `panel "${p.title}": gridPos within the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `panel "${p.title}" overlaps another at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
    if (p.type === 'row') continue;
    assert.ok(p.title, `panel ${p.id}: title`);
    const ds = p.datasource;
    assert.ok(ds?.type && ds?.uid, `panel "${p.title}": datasource {type, uid}`);
    const variable = ds.uid.match(/^\$\{(\w+)\}$/)?.[1];
    assert.ok(variable && vars.get(variable)?.query === ds.type,
      `panel "${p.title}": its datasource is the ${ds.type} datasource variable`);
    assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `panel "${p.title}": targets`);
    const refs = new Set(p.targets.map((t) => t.refId));
    assert.equal(refs.size, p.targets.length, `panel "${p.title}": distinct refIds`);
    for (const t of p.targets) {
      const body = ds.type === 'prometheus' ? t.expr : t.query;
      assert.ok(typeof body === 'string' && body.trim(), `panel "${p.title}" ${t.refId}: a ${ds.type} query`);
    }
  }
}

test('promtool check rules accepts the rules file', () => {
  const r = promtool('check', 'rules', rulesFile);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`SUCCESS: ${allRules.length} rules found`));
});

test('promtool test rules: the synthetic situations fire exactly the expected alerts', () => {
  const r = promtool('test', 'rules', rulesTestFile);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS/);
});

test('every situation of the rule tests names every alert, so none fires unexpectedly', () => {
  const tests = parseYaml(readFileSync(rulesTestFile, 'utf8')).tests;
  assert.ok(tests.length >= 6, 'the rule tests have their situations');
  assert.ok(alertNames.length > 10, 'the rules file has its alerts');
  for (const group of tests) {
    const named = new Set((group.alert_rule_test ?? []).map((t) => t.alertname));
    const missing = alertNames.filter((a) => !named.has(a));
    assert.deepEqual(missing, [], `test "${group.name}" does not say whether these fire`);
  }
});

test('every alert has a severity, a duration where it needs one, and says what to do', () => {
  for (const r of allRules.filter((x) => x.alert)) {
    assert.match(r.labels?.severity ?? '', /^(critical|warning)$/, `${r.alert}: severity`);
    assert.ok(r.annotations?.summary, `${r.alert}: summary`);
    assert.ok((r.annotations?.description ?? '').length > 80, `${r.alert}: a description an operator can act on`);
    // A state or a rate is only an incident once it lasts; increase() over a window lasts by itself.
    if (!/increase\(/.test(r.expr)) assert.ok(r.for, `${r.alert}: a for: duration`);
  }
});

test('the metric-name extraction finds selectors and ignores functions, labels and keywords', () => {
  assert.deepEqual([...metricNames(
    'histogram_quantile(0.99, sum by (project_id, le) (rate(event_lag_seconds_bucket{job="x", le!="1"}[5m])))',
  )], ['event_lag_seconds_bucket']);
  assert.deepEqual([...metricNames(
    '(increase(a_total[10m]) > 0) unless on (instance) (increase(b_total[$__rate_interval]) > 0) and bool c offset 5m',
  )].sort(), ['a_total', 'b_total', 'c']);
  assert.deepEqual([...metricNames('quantile by (job) (0.9, x:y:z > 0) * 1e3')], ['x:y:z']);
});

test('the rules and the dashboard select only series the agent exports (or the rules record)', async () => {
  const exported = await agentExports();
  // The agent's own families, from its live /metrics: the health state set and the lag histogram.
  for (const n of ['hydrate_health_state', 'hydrate_health_reason', 'event_lag_seconds_bucket',
    'hydrate_cold_start_seconds', 'hydrate_rehydrations_total']) {
    assert.ok(exported.has(n), `the running agent exports ${n} (got: ${[...exported].sort().join(', ')})`);
  }
  const exprs = allRules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr }));
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) {
      if (t.expr !== undefined) exprs.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
    }
  }
  for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = q.match(/^label_values\(\s*(.*),\s*(\w+)\s*\)$/);
    assert.ok(m, `variable ${v.name}: a label_values(series, label) query`);
    exprs.push({ where: `variable ${v.name}`, expr: m[1] });
  }
  const unknown = [];
  for (const { where, expr } of exprs) {
    const names = metricNames(expr);
    assert.ok(names.size > 0, `${where} selects no series: ${expr}`);
    for (const n of names) {
      if (!exported.has(n) && !recorded.has(n)) unknown.push(`${where}: ${n}`);
    }
  }
  assert.deepEqual(unknown, [], 'series that neither the agent exports nor the rules record');
});

test('the dashboard is a structurally valid Grafana dashboard with a panel for every KPI', () => {
  checkDashboard(dashboard);
  const promText = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
  for (const kpi of ['hydrate_health_state', 'hydrate_health_reason', 'hydrate_cold_start_seconds',
    'hydrate_rehydrations_total', 'event_lag_seconds_bucket', 'gaps_total', 'catchups_total',
    'reconnects_total', 'token_refresh_failures_total', 'apply_errors_total']) {
    assert.ok(promText.includes(kpi), `a panel shows ${kpi}`);
  }
  for (const v of ['$project', '$session']) assert.ok(promText.includes(v), `panels are filtered by ${v}`);
});

test("the dashboard's Analytics Engine panels read the edge's dataset and data-point columns", () => {
  const wrangler = readFileSync(join(root, 'edge/wrangler.toml'), 'utf8');
  const block = wrangler.match(/\[\[analytics_engine_datasets\]\]\s*\nbinding = "(\w+)"\s*\ndataset = "(\w+)"/);
  assert.ok(block, 'edge/wrangler.toml binds an Analytics Engine dataset');
  const logRs = readFileSync(join(root, 'edge/src/log.rs'), 'utf8');
  assert.ok(logRs.includes(`ANALYTICS_BINDING: &str = "${block[1]}"`), 'the worker writes to the bound name');
  const blobs = Number(logRs.match(/blobs: \[String; (\d+)\]/)[1]);
  const doubles = Number(logRs.match(/doubles: \[f64; (\d+)\]/)[1]);

  const sql = dashboard.panels.flatMap((p) => (p.datasource?.type === 'vertamedia-clickhouse-datasource'
    ? p.targets.map((t) => ({ title: p.title, t })) : []));
  assert.ok(sql.length >= 4, 'the edge has its panels');
  for (const { title, t } of sql) {
    assert.match(t.query, new RegExp(`\\bFROM ${block[2]}\\b`), `${title}: reads the ${block[2]} dataset`);
    assert.match(t.query, /\$timeFilter/, `${title}: limited to the dashboard's time range`);
    // Analytics Engine samples at high volume: counts, sums and quantiles weight each row.
    if (/\b(?:quantile\w*|sum|count|avg)\s*\(/i.test(t.query)) {
      assert.match(t.query, /_sample_interval/, `${title}: weights by Analytics Engine's sampling`);
    }
    assert.equal(t.dateTimeColDataType, 'timestamp', `${title}: the dataset's time column`);
    for (const [, kind, n] of t.query.matchAll(/\b(blob|double)(\d+)\b/g)) {
      assert.ok(Number(n) >= 1 && Number(n) <= (kind === 'blob' ? blobs : doubles),
        `${title}: ${kind}${n} is a column the worker writes`);
    }
  }
  const all = sql.map(({ t }) => t.query).join('\n');
  assert.match(all, /double3/, 'snapshot build time (build_ms) is shown');
  assert.match(all, /blob1 = 'session\.create'/, 'session creation latency is shown');
});

test('the structural check and promtool reject what Grafana and Prometheus would', () => {
  const firstPanel = (d) => d.panels.find((p) => p.type !== 'row');
  const breakages = {
    'a panel without a datasource': (d) => { delete firstPanel(d).datasource; },
    'overlapping panels': (d) => { firstPanel(d).gridPos = { ...d.panels[0].gridPos }; },
    'a Prometheus target without expr': (d) => { delete firstPanel(d).targets[0].expr; },
    'no schemaVersion': (d) => { delete d.schemaVersion; },
  };
  for (const [what, breakIt] of Object.entries(breakages)) {
    const broken = structuredClone(dashboard);
    breakIt(broken);
    assert.throws(() => checkDashboard(broken), assert.AssertionError, what);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-ops-'));
  const bad = join(dir, 'bad.rules.yml');
  writeFileSync(bad, 'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: rate(x[5m]\n');
  const r = promtool('check', 'rules', bad);
  rmSync(dir, { recursive: true, force: true });
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /FAILED/);
});
