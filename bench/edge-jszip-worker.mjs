// The seed's approach, as a plain JS Worker for bench/edge-snapshot.mjs (not deployed anywhere):
// read the whole project with contents in one get_project_snapshot call, build the same entries
// (manifest first, files sorted by path, fixed dates, deflate level 6, store below 64 bytes) with
// JSZip in memory, SHA-256 it with Web Crypto, upload it to Storage and sign it. Same inputs, same
// upstream calls' shape and the same answer fields as fs-sync-edge's POST /build-project-snapshot.
import JSZip from 'jszip';

const byBytes = (a, b) => {
  const x = new TextEncoder().encode(a.file_path);
  const y = new TextEncoder().encode(b.file_path);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
};

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

export default {
  async fetch(req, env) {
    if (new URL(req.url).pathname === '/health') return Response.json({ ok: true });
    const { projectId } = await req.json();
    const key = env.SUPABASE_SERVICE_ROLE_KEY;
    const auth = { apikey: key, authorization: `Bearer ${key}` };
    const started = Date.now();
    const res = await fetch(`${env.SUPABASE_URL}/rest/v1/rpc/get_project_snapshot`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ project_uuid: projectId }),
    });
    const snap = await res.json();
    const files = snap.files.sort(byBytes);
    const manifest = {
      as_of_seq: snap.as_of_seq,
      files: files.map((f) => ({
        content_hash: f.content_hash, file_type: f.file_type, path: f.file_path, size: f.size_bytes, version: f.version,
      })),
      format: 'fs-sync-snapshot/1',
      project_id: snap.project_id,
    };
    const date = new Date(Date.UTC(1980, 0, 1));
    const zip = new JSZip();
    zip.file('.fs-sync/manifest.json', JSON.stringify(manifest), { date, createFolders: false });
    for (const f of files) {
      zip.file(f.file_path, f.content, {
        date, createFolders: false, compression: f.size_bytes < 64 ? 'STORE' : 'DEFLATE',
      });
    }
    const bytes = await zip.generateAsync({ type: 'uint8array', compression: 'DEFLATE', compressionOptions: { level: 6 } });
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
    const name = `${projectId}/jszip-${sha256}.zip`;
    const up = await fetch(`${env.SUPABASE_URL}/storage/v1/object/project-snapshots/${name}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/zip', 'x-upsert': 'true' },
      body: bytes,
    });
    if (!up.ok) return new Response(await up.text(), { status: 502 });
    const signed = await (await fetch(`${env.SUPABASE_URL}/storage/v1/object/sign/project-snapshots/${name}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ expiresIn: 600 }),
    })).json();
    const line = { event_type: 'snapshot.build', impl: 'jszip', duration_ms: Date.now() - started, snapshot_bytes: bytes.length, snapshot_files: files.length };
    console.log(JSON.stringify(line));
    return Response.json({
      signedUrl: `${env.SUPABASE_URL}/storage/v1${signed.signedURL}`, sha256, size: bytes.length,
      asOfSeq: snap.as_of_seq, fileCount: files.length,
    });
  },
};
