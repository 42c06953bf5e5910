// The orchestrator's side of fs-sync (docs/deploy.md "The orchestrator call"): start a preview
// container's session on fs-sync-edge and end it when the container stops.
//
//   const s = await createSession({ edgeUrl, serviceKey, projectId });
//   if (s.mode === 'legacy') startLegacyContainer(projectId);        // FSYNC_SNAPSHOT_HYDRATION off
//   else startContainer(image, { env: s.env });                       // exactly these nine variables
//   …
//   await endSession({ edgeUrl, serviceKey, sessionId: s.sessionId }); // the container stopped
//
// It depends on nothing but `fetch` (global in Node 18+, Deno, Bun, Workers; or pass one in), so it
// can be copied into velocity's orchestrator as it is.

/** The container's environment, exactly as docs/contracts.md "Container token and env" lists it. */
export const CONTAINER_ENV_KEYS = [
  'PROJECT_ID',
  'SESSION_ID',
  'SNAPSHOT_URL',
  'SNAPSHOT_SHA256',
  'SUPABASE_URL',
  'SUPABASE_ANON_KEY',
  'REALTIME_TOKEN',
  'TOKEN_EXPIRES_AT',
  'EDGE_URL',
] as const;

export type ContainerEnvKey = (typeof CONTAINER_ENV_KEYS)[number];

/** What the container is started with: no service key, no JWT secret. */
export type ContainerEnv = Readonly<Record<ContainerEnvKey, string>>;

/** The subset of `fetch` this module uses (so a test or a runtime can pass its own). */
export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

export interface CreateSessionOptions {
  /** fs-sync-edge's origin, e.g. https://fs-sync-edge.example.workers.dev (a trailing slash is fine). */
  edgeUrl: string;
  /** The Supabase service-role key (the edge accepts it for POST /sessions and DELETE /sessions/<id>). */
  serviceKey: string;
  /** The project's UUID. */
  projectId: string;
  /** The orchestrator's own id for the container (1–128 of A-Z a-z 0-9 . _ : -); the edge makes one otherwise. */
  sessionId?: string | undefined;
  /** The session's maximum age in seconds; the edge's SESSION_MAX_AGE (default 12 h) otherwise. */
  maxAgeSeconds?: number | undefined;
  fetch?: FetchLike | undefined;
  signal?: AbortSignal | undefined;
}

/** A session: start the container with `env`, end it with `endSession({sessionId})`. */
export interface SnapshotSession {
  mode: 'snapshot';
  sessionId: string;
  projectId: string;
  env: ContainerEnv;
}

/** FSYNC_SNAPSHOT_HYDRATION is off for the project's owner: start the container the legacy way. */
export interface LegacyFallback {
  mode: 'legacy';
  /** The edge's explanation. */
  reason: string;
}

export type CreateSessionResult = SnapshotSession | LegacyFallback;

export interface EndSessionOptions {
  edgeUrl: string;
  serviceKey: string;
  sessionId: string;
  /** Recorded as the session's ended_reason (1–64 printable characters); the edge's default is "revoked". */
  reason?: string | undefined;
  fetch?: FetchLike | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The edge refused or failed a call, could not be reached, or answered something this module does
 * not understand. `status` is the HTTP status (null when no answer came), `code` the edge's stable
 * error code (`unauthorized`, `not_found`, …) when it sent one, `edgeMessage` its explanation.
 */
export class EdgeError extends Error {
  readonly status: number | null;
  readonly code: string | null;
  readonly edgeMessage: string;
  readonly request: string;

  constructor(request: string, status: number | null, code: string | null, edgeMessage: string) {
    const what = status === null ? 'no answer' : `HTTP ${status}${code ? ` ${code}` : ''}`;
    super(`${request}: ${what}: ${edgeMessage}`);
    this.name = 'EdgeError';
    this.request = request;
    this.status = status;
    this.code = code;
    this.edgeMessage = edgeMessage;
  }
}

const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * POST {edgeUrl}/sessions as the service role. Resolves `{mode: 'snapshot', sessionId, env}` (the
 * container's env exactly as the edge returned it), or `{mode: 'legacy', reason}` when the edge
 * answers 409 (its only meaning: snapshot hydration is off for this project's owner). Anything
 * else rejects with an {@link EdgeError}.
 */
export async function createSession(options: CreateSessionOptions): Promise<CreateSessionResult> {
  const { projectId, sessionId, maxAgeSeconds } = options;
  if (sessionId !== undefined && !SESSION_ID.test(sessionId)) {
    throw new TypeError('sessionId must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"');
  }
  if (maxAgeSeconds !== undefined && !(Number.isInteger(maxAgeSeconds) && maxAgeSeconds > 0)) {
    throw new TypeError(`maxAgeSeconds must be a positive integer, got ${String(maxAgeSeconds)}`);
  }
  const body: Record<string, unknown> = { projectId };
  if (sessionId !== undefined) body.sessionId = sessionId;
  if (maxAgeSeconds !== undefined) body.maxAgeSeconds = maxAgeSeconds;

  const url = `${origin(options.edgeUrl)}/sessions`;
  const request = `POST ${url}`;
  const { status, json, text } = await send(options, request, url, {
    method: 'POST',
    headers: { ...auth(options.serviceKey), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (status === 409) return { mode: 'legacy', reason: errorOf(json, text).message };
  if (status < 200 || status > 299) throw refusal(request, status, json, text);

  const envObject = isObject(json) && isObject(json.env) ? json.env : {};
  // Named, never quoted: the answer carries the container's token and a signed URL.
  const missing = CONTAINER_ENV_KEYS.filter((k) => typeof envObject[k] !== 'string' || envObject[k] === '');
  if (missing.length > 0) {
    throw new EdgeError(request, status, null,
      `the answer has no env with the nine container variables: ${missing.join(', ')} missing`);
  }
  const env = Object.freeze({ ...envObject }) as unknown as ContainerEnv;
  return { mode: 'snapshot', sessionId: env.SESSION_ID, projectId: env.PROJECT_ID, env };
}

/**
 * DELETE {edgeUrl}/sessions/<sessionId> as the service role, when the container stops: from then
 * on its token reads nothing and cannot be refreshed. Resolves on 204, also for a session that had
 * already ended (the call is idempotent); rejects with an {@link EdgeError} otherwise (404: the
 * edge has no such session, e.g. its project was deleted and took its sessions with it).
 */
export async function endSession(options: EndSessionOptions): Promise<void> {
  if (!SESSION_ID.test(options.sessionId)) {
    throw new TypeError('sessionId must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-"');
  }
  const query = options.reason === undefined ? '' : `?reason=${encodeURIComponent(options.reason)}`;
  const url = `${origin(options.edgeUrl)}/sessions/${encodeURIComponent(options.sessionId)}${query}`;
  const request = `DELETE ${url}`;
  const { status, json, text } = await send(options, request, url, {
    method: 'DELETE',
    headers: auth(options.serviceKey),
  });
  if (status < 200 || status > 299) throw refusal(request, status, json, text);
}

function origin(edgeUrl: string): string {
  let u: URL;
  try {
    u = new URL(edgeUrl);
  } catch {
    throw new TypeError(`edgeUrl is not a URL: ${JSON.stringify(edgeUrl)}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new TypeError(`edgeUrl must be http(s), got ${JSON.stringify(edgeUrl)}`);
  }
  return edgeUrl.replace(/\/+$/, '');
}

function auth(serviceKey: string): Record<string, string> {
  if (!serviceKey) throw new TypeError('serviceKey is empty');
  return { authorization: `Bearer ${serviceKey}` };
}

async function send(
  options: { fetch?: FetchLike | undefined; signal?: AbortSignal | undefined },
  request: string,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; json: unknown; text: string }> {
  const doFetch: FetchLike = options.fetch ?? globalThis.fetch;
  let res: Awaited<ReturnType<FetchLike>>;
  let text: string;
  try {
    res = await doFetch(url, options.signal ? { ...init, signal: options.signal } : init);
    text = await res.text();
  } catch (e) {
    throw new EdgeError(request, null, null, `the edge could not be reached (${describe(e)})`);
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/**
 * The edge's error body: `{error: "<code>", message}`, or `{error: {code, message}}`; anything
 * else (a proxy's HTML page, an empty body) is quoted, shortened.
 */
function errorOf(json: unknown, text: string): { code: string | null; message: string } {
  if (isObject(json)) {
    const { error, message } = json;
    if (isObject(error) && typeof error.message === 'string') {
      return { code: typeof error.code === 'string' ? error.code : null, message: error.message };
    }
    if (typeof error === 'string' && typeof message === 'string') return { code: error, message };
  }
  return { code: null, message: text ? `unexpected answer: ${clip(text)}` : 'empty answer' };
}

function refusal(request: string, status: number, json: unknown, text: string): EdgeError {
  const { code, message } = errorOf(json, text);
  return new EdgeError(request, status, code, message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

function clip(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
