// Storage through the official supabase-js against fs-sync-dev: the service role uploads a
// snapshot into project-snapshots/<project>/ (raw body and multipart), a project member signs a
// download URL and downloads it, the bucket policies refuse strangers and member writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSystem, createProject, client, newUser } from '../harness/index.mjs';

let sys;
let info;

before(async () => {
  sys = await startSystem({ edge: false, quiet: false });
  info = sys.info;
});

after(async () => {
  const { code, signal } = await sys.close();
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, sys.stack.stderr.slice(-2000));
});

test('upload as the service role, sign and download as a member', async () => {
  const { id: project, owner } = await createProject(sys, { name: 'storage' });
  const stranger = await newUser(sys);
  const service = client(sys, { access_token: info.service_role_key });
  const zip = Buffer.from('PK\x03\x04 a snapshot', 'latin1');
  const path = `${project}/snapshot-1.zip`;

  // Raw body (a Buffer is sent as is).
  let r = await service.storage.from('project-snapshots').upload(path, zip, { contentType: 'application/zip' });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.path, path);
  assert.equal(r.data.fullPath, `project-snapshots/${path}`);
  assert.match(r.data.id, /^[0-9a-f-]{36}$/);

  // Multipart (a Blob is sent as form data), replacing with upsert.
  const blob = new Blob([Buffer.concat([zip, Buffer.from(' v2')])], { type: 'application/zip' });
  r = await service.storage.from('project-snapshots').upload(path, blob, { upsert: true });
  assert.equal(r.error, null, JSON.stringify(r.error));

  // Without upsert a second upload is a duplicate.
  r = await service.storage.from('project-snapshots').upload(path, zip, { contentType: 'application/zip' });
  assert.ok(r.error);
  assert.equal(r.error.statusCode, '409');

  // The bucket only takes zips.
  r = await service.storage.from('project-snapshots').upload(`${project}/notes.txt`, 'hello', { contentType: 'text/plain' });
  assert.equal(r.error?.statusCode, '415');

  // A member signs and downloads through the signed URL (no credentials needed).
  const member = client(sys, owner);
  r = await member.storage.from('project-snapshots').createSignedUrl(path, 60);
  assert.equal(r.error, null, JSON.stringify(r.error));
  const signedUrl = r.data.signedUrl;
  assert.ok(signedUrl.startsWith(`${info.api_url}/storage/v1/object/sign/project-snapshots/${path}?token=`));
  let res = await fetch(signedUrl);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/zip');
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.concat([zip, Buffer.from(' v2')]));

  // A tampered token is refused with Storage's error body.
  const tampered = signedUrl.replace(/token=([^&.]+)\.([^&.]+)\.([^&]+)/, (_, h, p, s) => `token=${h}.${p}.${s.slice(0, -2)}xx`);
  res = await fetch(tampered);
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.deepEqual([body.statusCode, body.code, body.error], ['400', 'InvalidSignature', 'InvalidSignature']);

  // Authenticated download through supabase-js.
  r = await member.storage.from('project-snapshots').download(path);
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(Buffer.from(await r.data.arrayBuffer()).toString('latin1'), `${zip.toString('latin1')} v2`);

  // A stranger cannot see the object, so cannot sign it.
  r = await client(sys, stranger).storage.from('project-snapshots').createSignedUrl(path, 60);
  assert.ok(r.error);
  assert.equal(r.error.statusCode, '404');

  // Members may not write snapshots (no INSERT policy): RLS refuses.
  r = await member.storage.from('project-snapshots').upload(`${project}/mine.zip`, zip, { contentType: 'application/zip' });
  assert.ok(r.error);
  assert.equal(r.error.statusCode, '403');
  assert.match(r.error.message, /row-level security/);

  // remove() as the service role.
  r = await service.storage.from('project-snapshots').remove([path]);
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.length, 1);
  res = await fetch(signedUrl);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).code, 'NoSuchKey');
});
