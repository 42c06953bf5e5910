// The project editor store (`@velocity/fs-sync/store`): what velocity's `useProjectEditorStore`
// becomes. A zustand vanilla store over the app's own supabase-js client and the package's
// FsSyncClient, which does the hard parts in Rust (version tracking, no-op detection, the change
// log follower, errors, retries). This file holds only the editor's state machine: contents,
// drafts, conflicts, the flag-chosen write path, and the realtime wiring.
//
// Plain ES2015+ with no engine APIs beyond timers: it runs unchanged on the web, in Node and in
// Hermes (bundled by Metro, transformed by React Native's Babel preset).
import { createStore } from 'zustand/vanilla';

const USE_RPC = 'FSYNC_USE_RPC';
const BULK = 'FSYNC_BULK_GENERATION';
const CLIENT_BROADCAST = 'FSYNC_KEEP_CLIENT_BROADCAST';
// Larger optimistic edits are announced by hash only: Realtime caps a message's payload.
const MAX_BROADCAST_CONTENT = 64 * 1024;
// get_project_files answers at most this many paths per call (limits.max_bulk_files).
const FETCH_BATCH = 1000;
// Kinds a later attempt can fix by itself; the client has already retried them with backoff.
const TRANSIENT = ['network', 'server', 'rate_limited'];

/**
 * Binds the store to one build of the package (web, Node or React Native), so that the store
 * uses the same FsSyncClient as the app.
 */
export function bindStore(pkg) {
  const { FsSyncClient, FsSyncError } = pkg;

  function fail(kind, message, details) {
    return new FsSyncError(kind, message, details === undefined ? null : details);
  }

  // supabase-js answers { data, error } with a PostgrestError; the store throws FsSyncError.
  function fromPostgrest(what, error, status) {
    const code = error.code || null;
    let kind = 'invalid';
    if (code === '42501' || status === 401 || status === 403) kind = 'unauthorized';
    else if (code === 'PT409' || code === '23505' || status === 409) kind = 'conflict';
    else if (code === 'PT413' || status === 413) kind = 'too_large';
    else if (code === 'PT429' || status === 429) kind = 'rate_limited';
    else if (code === 'PT404') kind = 'not_found';
    else if (!status || status >= 500) kind = status ? 'server' : 'network';
    let details = error.details;
    try {
      details = typeof details === 'string' ? JSON.parse(details) : details;
    } catch (e) {
      // PostgREST's details are free text unless the function raised JSON.
    }
    return new FsSyncError(kind, `${what}: ${error.message}`, details == null ? null : details, status || null, code);
  }

  return function createProjectEditorStore(options) {
    if (!options || typeof options !== 'object') throw fail('invalid', 'options must be an object', { argument: 'options' });
    const supabase = options.supabase;
    if (!supabase || typeof supabase.rpc !== 'function' || typeof supabase.channel !== 'function') {
      throw fail('invalid', 'options.supabase must be a supabase-js client', { argument: 'options.supabase' });
    }
    // In Node the store's own timers do not keep the process alive: following a project is not
    // work a script waits for.
    const timers = options.timers || {
      setTimeout: (f, ms) => {
        const t = setTimeout(f, ms);
        if (t && typeof t.unref === 'function') t.unref();
        return t;
      },
      clearTimeout: (t) => clearTimeout(t),
    };
    const offline = { baseDelayMs: 1000, maxDelayMs: 30000, ...(options.offlineRetry || {}) };
    const makeClient = options.makeClient || ((projectId) => new FsSyncClient({
      supabaseUrl: options.supabaseUrl || supabase.supabaseUrl,
      anonKey: options.anonKey || supabase.supabaseKey,
      projectId,
      getAccessToken: accessToken,
      fetch: options.fetch,
      retry: options.retry,
    }));

    // The signed-in user's token: supabase-js's own `accessToken` option when the app uses one
    // (then supabase.auth is off limits), else its auth session.
    async function accessToken() {
      if (options.accessToken) return (await options.accessToken()) || '';
      const { data } = await supabase.auth.getSession();
      return (data && data.session && data.session.access_token) || '';
    }

    // Per open project; replaced whole by open() and close().
    let session = null;

    const store = createStore(() => ({
      projectId: null,
      /** 'idle' | 'loading' | 'ready' | 'error' */
      status: 'idle',
      error: null,
      /** The change-log seq the files reflect. */
      lastSeq: 0,
      /** Flags on for the signed-in user (get_enabled_features), read at open and refreshFeatures(). */
      features: [],
      /** path → { content, version, contentHash, fileType, size }: the server's heads. */
      files: {},
      /** path → content: local edits not saved yet (a save in flight or queued offline included). */
      drafts: {},
      /** path → { path, mine, theirs: { content, version, deleted }, baseVersion }: a local edit of a
       * file someone else changed. mine null = a local delete. */
      conflicts: {},
      /** path → { userId, contentHash, content?, at }: collaborators' unsaved edits (client broadcast). */
      peerEdits: {},
      /** Saves waiting for the network: path → attempts so far. */
      queued: {},
      /** Realtime channel status as supabase-js reports it. */
      realtime: 'closed',
      openPath: null,

      open: (projectId) => open(projectId),
      close: () => close(),
      openFile: (path) => store.setState({ openPath: path }),
      edit: (path, content) => edit(path, content),
      saveFile: (path, content) => act((s) => saveFile(s, path, content)),
      deleteFile: (path) => act((s) => deleteFile(s, path)),
      renameFile: (from, to) => act((s) => renameFile(s, from, to)),
      generateProjectStructure: (files) => act((s) => generate(s, files)),
      resolveConflict: (path, merged) => act((s) => resolveConflict(s, path, merged)),
      restore: (toSeq) => act((s) => restore(s, toSeq)),
      undo: (seq) => act((s) => undo(s, seq)),
      listChanges: (options) => act((s) => listChanges(s, options || {})),
      diff: (fromSeq, toSeq) => act((s) => diff(s, fromSeq, toSeq)),
      refreshFeatures: () => act((s) => refreshFeatures(s)),
      sync: () => act((s) => sync(s)),
      isDirty: (path) => isDirty(path),
      usesRpc: () => store.getState().features.indexOf(USE_RPC) >= 0,
    }));

    const on = (flag) => store.getState().features.indexOf(flag) >= 0;

    function current() {
      if (!session) throw fail('invalid', 'no project is open: call open(projectId) first', { argument: 'projectId' });
      return session;
    }

    // A call on the open project.
    function act(task) {
      let s;
      try {
        s = current();
      } catch (e) {
        return Promise.reject(e);
      }
      return serial(s, task);
    }

    // Work on one session runs one task at a time, in call order: remote changes are applied in
    // seq order and a save never interleaves with the catch-up that decides its conflict.
    function serial(s, task) {
      const result = s.queue.then(() => (s.closed ? Promise.reject(fail('invalid', 'the project was closed')) : task(s)));
      s.queue = result.then(() => undefined, () => undefined);
      return result;
    }

    async function rpc(name, args) {
      const { data, error, status } = await supabase.rpc(name, args);
      if (error) throw fromPostgrest(name, error, status);
      return data;
    }

    async function open(projectId) {
      if (typeof projectId !== 'string' || !projectId) throw fail('invalid', 'projectId must be a project uuid', { argument: 'projectId' });
      close();
      const s = {
        projectId,
        client: makeClient(projectId),
        queue: Promise.resolve(),
        closed: false,
        channel: null,
        edits: null,
        timer: null,
        retryTimer: null,
        // Our own client broadcasts carry this, so they are not taken for a collaborator's.
        instance: Math.random().toString(36).slice(2),
      };
      session = s;
      store.setState({
        projectId, status: 'loading', error: null, lastSeq: 0, files: {}, drafts: {}, conflicts: {}, peerEdits: {},
        queued: {}, realtime: 'closed', openPath: null,
      });
      return serial(s, async () => {
        try {
          await refreshFeatures(s);
          await load(s);
          await subscribe(s);
          store.setState({ status: 'ready' });
          schedule(s);
        } catch (e) {
          if (!s.closed) store.setState({ status: 'error', error: e });
          throw e;
        }
      });
    }

    function close() {
      const s = session;
      if (!s) return;
      s.closed = true;
      session = null;
      timers.clearTimeout(s.timer);
      timers.clearTimeout(s.retryTimer);
      if (s.channel) supabase.removeChannel(s.channel);
      if (s.edits) supabase.removeChannel(s.edits);
      // Tasks in flight still use the client: free it once they are done.
      s.queue.then(() => s.client.free());
      store.setState({ projectId: null, status: 'idle', realtime: 'closed' });
    }

    async function refreshFeatures(s) {
      const features = await s.client.enabledFeatures();
      if (!s.closed) store.setState({ features });
      return features;
    }

    // The tracker's heads come from the client's load (heads and their seq, one read); contents
    // from one snapshot read. The two reads may be seqs apart: a catch-up from the first brings
    // every path that moved in between, and those paths are fetched at their exact versions.
    async function load(s) {
      const { asOfSeq } = await s.client.load();
      const snapshot = await rpc('get_project_snapshot', { project_uuid: s.projectId, include_content: true });
      const files = {};
      for (const f of snapshot.files) files[f.file_path] = fileOf(f);
      store.setState({ files, lastSeq: asOfSeq });
      const caught = await s.client.catchUp();
      await settle(s, caught.changedPaths);
    }

    function fileOf(f) {
      return {
        content: f.content === undefined ? null : f.content,
        version: f.version,
        contentHash: f.content_hash,
        fileType: f.file_type,
        size: f.size_bytes,
      };
    }

    // Brings `files` to the tracker's heads for `paths` (fetching contents at exact versions),
    // and turns a local draft of a path that moved under it into a conflict.
    async function settle(s, paths) {
      const fetch = [];
      const gone = [];
      const { files } = store.getState();
      for (const path of paths) {
        const head = s.client.head(path);
        if (!head) continue;
        if (head.deleted) {
          if (files[path]) gone.push(path);
        } else if (!files[path] || files[path].version !== head.version) {
          fetch.push({ path, version: head.version });
        }
      }
      const fetched = [];
      for (let i = 0; i < fetch.length; i += FETCH_BATCH) {
        const part = fetch.slice(i, i + FETCH_BATCH);
        const rows = await rpc('get_project_files', {
          project_uuid: s.projectId, paths: part.map((p) => p.path), versions: part.map((p) => p.version),
        });
        for (const row of rows) fetched.push(row);
      }
      if (s.closed) return;
      const state = store.getState();
      const next = { ...state.files };
      const drafts = { ...state.drafts };
      const conflicts = { ...state.conflicts };
      for (const path of gone) {
        const mine = drafts[path];
        if (mine !== undefined && !conflicts[path]) {
          conflicts[path] = { path, mine, theirs: { content: null, version: s.client.head(path).version, deleted: true }, baseVersion: next[path].version };
        }
        delete next[path];
      }
      for (const row of fetched) {
        const path = row.file_path;
        const head = s.client.head(path);
        // A later change already moved the path again; its own settle brings it.
        if (!head || head.version !== row.version) continue;
        const before = next[path];
        next[path] = fileOf(row);
        const mine = drafts[path];
        if (mine === undefined) continue;
        if (mine === row.content) {
          delete drafts[path];
          delete conflicts[path];
        } else {
          conflicts[path] = {
            path, mine, theirs: { content: row.content, version: row.version, deleted: false },
            baseVersion: conflicts[path] ? conflicts[path].baseVersion : (before ? before.version : 0),
          };
        }
      }
      store.setState({ files: next, drafts, conflicts, lastSeq: s.client.lastSeq });
    }

    async function subscribe(s) {
      const token = await accessToken();
      // Private channels authorize with the user's token (realtime.messages policies).
      if (token && supabase.realtime && supabase.realtime.setAuth) await supabase.realtime.setAuth(token);
      s.userId = options.userId || null;
      if (!s.userId && !options.accessToken) {
        const { data } = await supabase.auth.getSession();
        s.userId = (data && data.session && data.session.user && data.session.user.id) || null;
      }
      s.channel = supabase
        .channel(`project:${s.projectId}`, { config: { private: true } })
        .on('broadcast', { event: '*' }, (message) => onEvent(s, message))
        .subscribe((status) => {
          if (s.closed) return;
          store.setState({ realtime: status });
          // A dropped last event has no successor to reveal it: read the log after every join.
          if (status === 'SUBSCRIBED') serial(s, sync).catch(() => {});
        });
      if (on(CLIENT_BROADCAST)) {
        s.edits = supabase
          .channel(`project:${s.projectId}:edits`, { config: { private: true, broadcast: { self: false } } })
          .on('broadcast', { event: 'edit' }, (message) => onPeerEdit(s, message.payload))
          .subscribe();
      }
    }

    function onEvent(s, message) {
      if (s.closed) return;
      let result;
      try {
        result = s.client.applyEvent(message);
      } catch (e) {
        // Not an fs-sync event (or a malformed one): the log stays the truth.
        return;
      }
      if (result.changedPaths.length > 0 || result.syncNeeded) {
        serial(s, async () => {
          await settle(s, result.changedPaths);
          if (result.syncNeeded) await sync(s);
        }).catch((e) => store.setState({ error: e }));
      }
    }

    function onPeerEdit(s, payload) {
      if (s.closed || !payload || typeof payload.path !== 'string' || payload.instance === s.instance) return;
      store.setState((state) => ({
        peerEdits: {
          ...state.peerEdits,
          [payload.path]: { userId: payload.userId || null, contentHash: payload.contentHash, content: payload.content, at: Date.now() },
        },
      }));
    }

    // Reads the log after the last applied seq and applies it; retries saves queued offline.
    async function sync(s) {
      try {
        const caught = await s.client.catchUp();
        await settle(s, caught.changedPaths);
        if (store.getState().error && store.getState().status === 'ready') store.setState({ error: null });
      } catch (e) {
        if (e.kind === 'rehydrate') {
          // The log no longer reaches our position: start again from a fresh read.
          await load(s);
        } else {
          store.setState({ error: e });
          if (TRANSIENT.indexOf(e.kind) < 0) throw e;
        }
      }
      await retryQueued(s);
    }

    function schedule(s) {
      if (s.closed) return;
      timers.clearTimeout(s.timer);
      s.timer = timers.setTimeout(() => {
        serial(s, sync).catch(() => {}).then(() => schedule(s));
      }, Math.max(s.client.nextSyncInMs, 250));
    }

    function isDirty(path) {
      const { drafts, files } = store.getState();
      if (drafts[path] === undefined) return false;
      return !files[path] || files[path].content !== drafts[path];
    }

    function edit(path, content) {
      const s = current();
      pkg.validatePath(path);
      if (typeof content !== 'string') throw fail('invalid', 'content must be a string', { argument: 'content' });
      store.setState((state) => ({ drafts: { ...state.drafts, [path]: content } }));
      if (s.edits && on(CLIENT_BROADCAST)) {
        const payload = { path, contentHash: pkg.contentHash(content), instance: s.instance, userId: s.userId };
        if (content.length <= MAX_BROADCAST_CONTENT) payload.content = content;
        s.edits.send({ type: 'broadcast', event: 'edit', payload });
      }
    }

    // A save that failed for a transient reason stays a draft and is retried; anything else is
    // the caller's to see.
    function enqueue(s, path, error) {
      const queued = { ...store.getState().queued };
      queued[path] = (queued[path] || 0) + 1;
      store.setState({ queued, error });
      if (!s.retryTimer) {
        const attempt = Math.max(...Object.values(queued));
        const delay = Math.min(offline.maxDelayMs, offline.baseDelayMs * 2 ** Math.min(attempt - 1, 20));
        s.retryTimer = timers.setTimeout(() => {
          s.retryTimer = null;
          serial(s, retryQueued).catch(() => {});
        }, delay);
      }
      return { status: 'queued', path, error };
    }

    async function retryQueued(s) {
      const { queued, drafts } = store.getState();
      for (const path of Object.keys(queued)) {
        if (s.closed) return;
        const content = drafts[path];
        const rest = { ...store.getState().queued };
        delete rest[path];
        store.setState({ queued: rest });
        if (content === undefined) continue;
        try {
          await writeOne(s, path, content);
        } catch (e) {
          if (TRANSIENT.indexOf(e.kind) >= 0) enqueue(s, path, e);
          else store.setState({ error: e });
        }
      }
    }

    async function saveFile(s, path, content) {
      const text = content === undefined ? store.getState().drafts[path] : content;
      if (text === undefined) return { status: 'noop', path };
      if (typeof text !== 'string') throw fail('invalid', 'content must be a string', { argument: 'content' });
      pkg.validatePath(path);
      store.setState((state) => ({ drafts: { ...state.drafts, [path]: text } }));
      if (store.getState().conflicts[path]) {
        return { status: 'conflict', path, conflict: store.getState().conflicts[path] };
      }
      try {
        return await writeOne(s, path, text);
      } catch (e) {
        if (TRANSIENT.indexOf(e.kind) >= 0) return enqueue(s, path, e);
        throw e;
      }
    }

    // One save by the path the flags choose. Resolves to { status: 'saved' | 'noop' | 'conflict' }.
    async function writeOne(s, path, text) {
      if (on(USE_RPC)) {
        let head;
        try {
          head = await s.client.save(path, text);
        } catch (e) {
          if (e.kind !== 'conflict') throw e;
          // Someone saved first: read what they saved; settle turns our draft into the conflict.
          await sync(s);
          return conflictOf(s, path);
        }
        confirm(path, text, head);
        return { status: head.noop ? 'noop' : 'saved', path, version: head.version, seq: head.seq };
      }
      // Legacy: a direct insert, which the database turns into a versioned write (last writer
      // wins). Read the log first so a change we have not seen becomes a conflict, not a loss.
      await sync(s);
      if (store.getState().conflicts[path]) return conflictOf(s, path);
      if (!s.client.isDirty(path, text)) {
        confirm(path, text, null);
        return { status: 'noop', path };
      }
      const { error, status } = await supabase.from('project_files').insert({
        project_id: s.projectId, file_path: path, content: text, file_type: pkg.inferFileType(path),
      });
      if (error) throw fromPostgrest('project_files insert', error, status);
      await sync(s);
      const head = s.client.head(path);
      return { status: 'saved', path, version: head ? head.version : null, seq: null };
    }

    function conflictOf(s, path) {
      const conflict = store.getState().conflicts[path];
      if (conflict) return { status: 'conflict', path, conflict };
      // The other save equalled ours: nothing to resolve.
      return { status: 'noop', path };
    }

    function confirm(path, text, head) {
      store.setState((state) => {
        const files = { ...state.files };
        const drafts = { ...state.drafts };
        const prev = files[path];
        files[path] = head
          ? { content: text, version: head.version, contentHash: head.contentHash, fileType: head.fileType, size: head.size }
          : prev;
        if (drafts[path] === text) delete drafts[path];
        return { files, drafts, lastSeq: Math.max(state.lastSeq, head && head.seq ? head.seq : 0) };
      });
    }

    async function deleteFile(s, path) {
      pkg.validatePath(path);
      if (store.getState().conflicts[path]) return conflictOf(s, path);
      if (on(USE_RPC)) {
        try {
          await s.client.remove(path);
        } catch (e) {
          if (e.kind !== 'conflict') throw e;
          await sync(s);
          return conflictOf(s, path);
        }
      } else {
        await sync(s);
        const { error, status } = await supabase.from('project_files').delete()
          .eq('project_id', s.projectId).eq('file_path', path);
        if (error) throw fromPostgrest('project_files delete', error, status);
        await sync(s);
      }
      dropLocal(path);
      return { status: 'deleted', path };
    }

    function dropLocal(path) {
      store.setState((state) => {
        const files = { ...state.files };
        const drafts = { ...state.drafts };
        delete files[path];
        delete drafts[path];
        return { files, drafts };
      });
    }

    async function renameFile(s, from, to) {
      pkg.validatePath(from);
      pkg.validatePath(to);
      if (store.getState().conflicts[from]) return conflictOf(s, from);
      let head = null;
      if (on(USE_RPC)) {
        try {
          head = await s.client.rename(from, to);
        } catch (e) {
          if (e.kind !== 'conflict') throw e;
          await sync(s);
          return conflictOf(s, from);
        }
      } else {
        await sync(s);
        const { error, status } = await supabase.from('project_files').update({ file_path: to })
          .eq('project_id', s.projectId).eq('file_path', from).eq('is_current_version', true);
        if (error) throw fromPostgrest('project_files update', error, status);
      }
      store.setState((state) => {
        const files = { ...state.files };
        const drafts = { ...state.drafts };
        // Without the RPC's answer the new path's version comes from the log (the rename's event).
        if (files[from]) files[to] = head ? { ...files[from], version: head.version, contentHash: head.contentHash } : files[from];
        delete files[from];
        if (drafts[from] !== undefined) drafts[to] = drafts[from];
        delete drafts[from];
        return { files, drafts };
      });
      await sync(s);
      return { status: 'renamed', from, to };
    }

    // An AI generation: one bulk write (one event, all or nothing) where FSYNC_BULK_GENERATION is
    // on, else one save per file, in order.
    async function generate(s, files) {
      if (!Array.isArray(files)) throw fail('invalid', 'files must be an array of { path, content }', { argument: 'files' });
      files.forEach((f, i) => {
        if (!f || typeof f.path !== 'string' || (typeof f.content !== 'string' && !f.delete)) {
          throw fail('invalid', `files[${i}] must be { path, content } or { path, delete: true }`, { argument: `files[${i}]` });
        }
        pkg.validatePath(f.path);
      });
      if (on(USE_RPC) && on(BULK)) {
        const result = await s.client.saveAll(files.map((f) => (f.delete ? { path: f.path, delete: true } : { path: f.path, content: f.content, fileType: f.fileType })));
        const byPath = {};
        for (const f of result.files) byPath[f.path] = f;
        store.setState((state) => {
          const next = { ...state.files };
          const drafts = { ...state.drafts };
          for (const f of files) {
            const head = byPath[f.path];
            if (f.delete) delete next[f.path];
            else if (head) {
              next[f.path] = { content: f.content, version: head.version, contentHash: head.contentHash, fileType: f.fileType || pkg.inferFileType(f.path), size: null };
            }
            if (drafts[f.path] === f.content) delete drafts[f.path];
          }
          return { files: next, drafts, lastSeq: Math.max(state.lastSeq, result.seq || 0) };
        });
        return { status: 'saved', mode: 'bulk', seq: result.seq, applied: result.applied, unchanged: result.unchanged };
      }
      let applied = 0;
      for (const f of files) {
        const r = f.delete ? await deleteFile(s, f.path) : await writeOne(s, f.path, f.content);
        if (r.status === 'conflict') return { status: 'conflict', mode: 'sequential', applied, conflict: r.conflict };
        if (r.status !== 'noop') applied++;
      }
      return { status: 'saved', mode: 'sequential', seq: null, applied, unchanged: files.length - applied };
    }

    // Saves `merged` (or deletes, for null) over the version the conflict showed. If the path moved
    // again meanwhile, the conflict is refreshed instead and nothing is written.
    async function resolveConflict(s, path, merged) {
      const conflict = store.getState().conflicts[path];
      if (!conflict) throw fail('invalid', `no conflict on ${path}`, { argument: 'path' });
      await sync(s);
      const latest = store.getState().conflicts[path];
      if (latest && latest.theirs.version !== conflict.theirs.version) return { status: 'conflict', path, conflict: latest };
      const conflicts = { ...store.getState().conflicts };
      delete conflicts[path];
      store.setState({ conflicts });
      if (merged === null) {
        const head = s.client.head(path);
        if (head && head.deleted) {
          dropLocal(path);
          return { status: 'deleted', path };
        }
        return deleteFile(s, path);
      }
      store.setState((state) => ({ drafts: { ...state.drafts, [path]: merged } }));
      return writeOne(s, path, merged);
    }

    function seqArg(value, name) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw fail('invalid', `${name} must be a change-log seq (an integer, 0 or more)`, { argument: name });
      }
      return value;
    }

    // Puts the whole project back to what it was right after `toSeq`, as one new change. Guarded
    // by the seq this store has seen: changes it has not shown yet make it a conflict, not a loss.
    async function restore(s, toSeq) {
      seqArg(toSeq, 'toSeq');
      let result;
      try {
        result = await rpc('restore_project', { project_uuid: s.projectId, to_seq: toSeq, expected_seq: store.getState().lastSeq });
      } catch (e) {
        if (e.kind !== 'conflict') throw e;
        await sync(s);
        return { status: 'conflict', currentSeq: store.getState().lastSeq, error: e };
      }
      await sync(s);
      return { status: result.seq === null ? 'noop' : 'restored', seq: result.seq, restored: result.restored, deleted: result.deleted, unchanged: result.unchanged };
    }

    // The paths a change touched, with the version it gave each.
    function touched(event) {
      if (event.type === 'bulk:apply') return event.files.map((f) => ({ path: f.file_path, version: f.version }));
      const out = [{ path: event.file_path, version: event.version }];
      if (event.type === 'file:rename') out.push({ path: event.from_path, version: event.from_version });
      return out;
    }

    // Undoes one change (an AI generation, usually): each path it touched goes back to its state
    // before it, except paths someone changed since, which are reported (the user decides).
    async function undo(s, seq) {
      seqArg(seq, 'seq');
      if (seq === 0) throw fail('invalid', 'seq must be a change (1 or more)', { argument: 'seq' });
      const events = await rpc('list_project_events', { project_uuid: s.projectId, after_seq: seq - 1, max_events: 1 });
      const event = events[0];
      if (!event || event.seq !== seq) throw fail('not_found', `no change ${seq} in this project's log`, { seq });
      await sync(s);
      const revert = [];
      const conflicts = [];
      for (const t of touched(event)) {
        const head = s.client.head(t.path);
        if (head && head.version !== t.version) conflicts.push({ path: t.path, changeVersion: t.version, currentVersion: head.version });
        else revert.push(t.path);
      }
      let result = { seq: null, restored: 0, deleted: 0, unchanged: 0 };
      if (revert.length > 0) {
        try {
          result = await rpc('restore_project', {
            project_uuid: s.projectId, to_seq: seq - 1, expected_seq: store.getState().lastSeq, paths: revert,
          });
        } catch (e) {
          if (e.kind !== 'conflict') throw e;
          // Someone wrote between our read and the restore: look again.
          await sync(s);
          return { status: 'conflict', seq, reverted: [], conflicts, currentSeq: store.getState().lastSeq, error: e };
        }
        await sync(s);
      }
      return {
        status: conflicts.length === 0 ? 'undone' : 'partial', seq, undoSeq: result.seq,
        reverted: revert, conflicts,
      };
    }

    // The project's changes, newest last: who, when, what kind, which paths. No contents.
    async function listChanges(s, options) {
      const afterSeq = options.afterSeq === undefined ? 0 : seqArg(options.afterSeq, 'afterSeq');
      const limit = options.limit === undefined ? 100 : seqArg(options.limit, 'limit');
      const events = await rpc('list_project_events', { project_uuid: s.projectId, after_seq: afterSeq, max_events: limit });
      return events.map((e) => ({
        seq: e.seq, type: e.type, actor: e.actor || null, timestamp: e.timestamp || null,
        paths: touched(e).map((t) => t.path),
      }));
    }

    // What differs between two points: added, modified, deleted, renamed; versions and hashes.
    async function diff(s, fromSeq, toSeq) {
      seqArg(fromSeq, 'fromSeq');
      seqArg(toSeq, 'toSeq');
      return rpc('diff_project', { project_uuid: s.projectId, from_seq: fromSeq, to_seq: toSeq });
    }

    return store;
  };
}
