// Edits through @velocity/fs-sync, as an app makes them: a client per user, a seeded burst of
// concurrent writers, and the "nothing applied twice" check over the agents' log lines.

/** A @velocity/fs-sync client for `user` on `projectId`. */
export function fsClient(pkg, sys, user, projectId, options = {}) {
  return new pkg.FsSyncClient({
    supabaseUrl: sys.info.api_url,
    anonKey: sys.info.anon_key,
    projectId,
    getAccessToken: () => user.access_token,
    ...options,
  });
}

/** The p-th percentile (0–100) of numbers, nearest-rank. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** A small seeded PRNG (mulberry32): the same seed gives the same burst. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `total` edits from `users.length` concurrent writers, each its own FsSyncClient (a distinct
 * user, loaded first). Each writer owns `burst/w<i>/…` (saves, deletes, renames, small bulks) and
 * all share `burst/shared/…`, where their saves conflict; a conflict is resolved the way an
 * editor does (catchUp, then save again), at most 20 times per edit. `onEdit(n)` sees the running
 * count of completed edits. Resolves {edits, conflicts, kinds}.
 */
export async function burst(pkg, sys, projectId, users, { total = 1000, seed = 7, onEdit } = {}) {
  let done = 0;
  let conflicts = 0;
  const kinds = { save: 0, shared: 0, delete: 0, rename: 0, bulk: 0 };
  const writer = async (user, w, count) => {
    const fs = fsClient(pkg, sys, user, projectId);
    await fs.load();
    const rand = prng(seed * 1000 + w);
    const own = (k) => `burst/w${w}/file-${k}.ts`;
    const live = (p) => { const h = fs.head(p); return h !== undefined && !h.deleted; };
    const body = (i) => `// writer ${w}, edit ${i}\nexport const value${w} = ${i};\n${'x'.repeat(Math.floor(rand() * 400))}\n`;
    const retrying = async (op) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await op();
        } catch (e) {
          if (e?.kind !== 'conflict' || attempt >= 20) throw e;
          conflicts += 1;
          await fs.catchUp();
        }
      }
    };
    for (let i = 0; i < count; i++) {
      const r = rand();
      const k = Math.floor(rand() * 12);
      if (r < 0.15) {
        kinds.shared += 1;
        const p = `burst/shared/s${Math.floor(rand() * 6)}.ts`;
        await retrying(() => fs.save(p, `// shared, writer ${w}, edit ${i}\n`));
      } else if (r < 0.23 && live(own(k))) {
        kinds.delete += 1;
        await fs.remove(own(k));
      } else if (r < 0.30 && live(own(k)) && !live(own(k + 12))) {
        kinds.rename += 1;
        await fs.rename(own(k), own(k + 12));
      } else if (r < 0.40) {
        kinds.bulk += 1;
        const files = [0, 1, 2].map((j) => ({ path: own((k + j * 5) % 24), content: body(i * 10 + j) }));
        const gone = own((k + 7) % 24);
        if (live(gone) && !files.some((f) => f.path === gone)) files.push({ path: gone, delete: true });
        await fs.saveAll(files);
      } else {
        kinds.save += 1;
        await fs.save(own(k), body(i));
      }
      done += 1;
      onEdit?.(done);
    }
  };
  const per = Math.floor(total / users.length);
  await Promise.all(users.map((u, w) => writer(u, w, w === 0 ? total - per * (users.length - 1) : per)));
  return { edits: done, conflicts, kinds };
}

/**
 * Checks "nothing applied twice" from the agents' `event applied` log lines, one array per run of
 * an agent on the same folder (a restart makes a second run): within a run no seq repeats and seqs
 * only go up; together the runs cover every seq in (fromSeq, toSeq]; a seq a later run applies
 * again (the earlier run died before saving its state) wrote nothing the second time. Returns a
 * list of problems (empty when all hold).
 */
export function exactlyOnce(runs, fromSeq, toSeq) {
  const problems = [];
  const seen = new Map();
  runs.forEach((lines, run) => {
    let last = -Infinity;
    const mine = new Set();
    for (const l of lines) {
      if (mine.has(l.seq)) problems.push(`run ${run + 1} applied seq ${l.seq} twice`);
      if (l.seq <= last) problems.push(`run ${run + 1} applied seq ${l.seq} after ${last}`);
      mine.add(l.seq);
      last = Math.max(last, l.seq);
      if (seen.has(l.seq) && l.written > 0) {
        problems.push(`seq ${l.seq} was applied in run ${seen.get(l.seq) + 1} and wrote ${l.written} file(s) again in run ${run + 1}`);
      }
      if (!seen.has(l.seq)) seen.set(l.seq, run);
    }
  });
  for (let s = fromSeq + 1; s <= toSeq; s++) if (!seen.has(s)) problems.push(`seq ${s} was never applied`);
  for (const s of seen.keys()) if (s <= fromSeq || s > toSeq) problems.push(`seq ${s} is outside (${fromSeq}, ${toSeq}]`);
  return problems;
}
