import type { StoreApi } from 'zustand/vanilla';
import type { FileType, FsSyncErrorShape, RetryOptions, FsSyncClient } from '../index.js';

/** A file as the server holds it (the head). `content` is null for a binary kept in Storage. */
export interface StoreFile {
  content: string | null;
  version: number;
  contentHash: string | null;
  fileType: FileType | string;
  size: number | null;
}

/** A local edit of a file someone else changed: both sides, until `resolveConflict`. */
export interface Conflict {
  path: string;
  /** The local edit; null for a local delete. */
  mine: string | null;
  theirs: { content: string | null; version: number; deleted: boolean };
  /** The version the local edit started from. */
  baseVersion: number;
}

export type SaveResult =
  | { status: 'saved'; path: string; version: number | null; seq: number | null }
  | { status: 'noop'; path: string }
  | { status: 'conflict'; path: string; conflict: Conflict }
  /** A network, server or rate-limit failure: the edit stays in `drafts` and is retried. */
  | { status: 'queued'; path: string; error: FsSyncErrorShape };

export interface GenerateResult {
  status: 'saved' | 'conflict';
  /** 'bulk': one bulk_upsert_project_files call, one event; 'sequential': one save per file. */
  mode: 'bulk' | 'sequential';
  seq: number | null;
  applied: number;
  unchanged?: number;
  conflict?: Conflict;
}

export interface HistoryEntry {
  seq: number;
  type: 'file:update' | 'file:delete' | 'file:rename' | 'bulk:apply';
  actor: string | null;
  timestamp: string | null;
  paths: string[];
}

export interface PathChange {
  file_path: string;
  change: 'added' | 'modified' | 'deleted' | 'renamed';
  from_path?: string | null;
  from_version: number | null;
  to_version: number | null;
  from_hash: string | null;
  to_hash: string | null;
}

export interface ProjectEditorState {
  projectId: string | null;
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: FsSyncErrorShape | null;
  /** The change-log seq `files` reflects. */
  lastSeq: number;
  /** The flags on for the signed-in user (get_enabled_features): read at open and by refreshFeatures. */
  features: string[];
  files: Record<string, StoreFile>;
  /** Local edits not saved yet (in flight, queued offline, or in conflict). */
  drafts: Record<string, string>;
  conflicts: Record<string, Conflict>;
  /** Collaborators' unsaved edits, while FSYNC_KEEP_CLIENT_BROADCAST is on. */
  peerEdits: Record<string, { userId: string | null; contentHash: string; content?: string; at: number }>;
  /** Saves waiting for the network: path → failed attempts. */
  queued: Record<string, number>;
  /** The realtime channel's status as supabase-js reports it ('SUBSCRIBED', 'CLOSED', …). */
  realtime: string;
  openPath: string | null;

  /** Loads the project (heads, contents and their seq), follows its realtime topic. */
  open(projectId: string): Promise<void>;
  close(): void;
  openFile(path: string): void;
  /** Records a local edit (a draft); broadcasts it when FSYNC_KEEP_CLIENT_BROADCAST is on. */
  edit(path: string, content: string): void;
  /** Saves `content` (default: the draft). No request when it equals the head. */
  saveFile(path: string, content?: string): Promise<SaveResult>;
  deleteFile(path: string): Promise<{ status: 'deleted'; path: string } | { status: 'conflict'; path: string; conflict: Conflict }>;
  renameFile(from: string, to: string): Promise<{ status: 'renamed'; from: string; to: string } | { status: 'conflict'; path: string; conflict: Conflict }>;
  /** An AI generation: one bulk write when FSYNC_USE_RPC and FSYNC_BULK_GENERATION are on, else one save per file. */
  generateProjectStructure(files: { path: string; content?: string; fileType?: FileType; delete?: boolean }[]): Promise<GenerateResult>;
  /** Saves the merge (null: delete) over the version the conflict shows. */
  resolveConflict(path: string, merged: string | null): Promise<SaveResult | { status: 'deleted'; path: string }>;
  /** Makes the project what it was right after `toSeq`, as one new change (history is kept).
   * 'conflict' when the project moved past what this store has shown (`lastSeq`). */
  restore(toSeq: number): Promise<
    | { status: 'restored' | 'noop'; seq: number | null; restored: number; deleted: number; unchanged: number }
    | { status: 'conflict'; currentSeq: number; error: FsSyncErrorShape }>;
  /** Undoes change `seq` (a generation): every path it touched goes back to its state before it,
   * as one change, except paths changed since, listed in `conflicts` and left as they are. */
  undo(seq: number): Promise<{
    status: 'undone' | 'partial' | 'conflict';
    seq: number;
    undoSeq?: number | null;
    reverted: string[];
    conflicts: { path: string; changeVersion: number; currentVersion: number }[];
  }>;
  /** The change log for a history view: who, when, what, which paths (no contents). */
  listChanges(options?: { afterSeq?: number; limit?: number }): Promise<HistoryEntry[]>;
  /** The paths that differ between two points, with versions and hashes (no contents). */
  diff(fromSeq: number, toSeq: number): Promise<PathChange[]>;
  refreshFeatures(): Promise<string[]>;
  /** Reads the change log now and retries queued saves (the store also does this on its own). */
  sync(): Promise<void>;
  isDirty(path: string): boolean;
  /** Whether saves go through the RPCs (FSYNC_USE_RPC) rather than the legacy table writes. */
  usesRpc(): boolean;
}

export interface ProjectEditorStoreOptions {
  /** The app's supabase-js client (signed in): RPCs, table writes for the legacy path, realtime. */
  supabase: any;
  /** The token source when the supabase client was made with supabase-js's `accessToken` option
   * (default: `supabase.auth.getSession()`). */
  accessToken?: () => Promise<string | null> | string | null;
  /** The signed-in user's id, shown to collaborators with broadcast edits (default: from the auth session). */
  userId?: string;
  /** Default: the supabase client's URL and key. */
  supabaseUrl?: string;
  anonKey?: string;
  /** For the FsSyncClient's requests (default: globalThis.fetch). */
  fetch?: (input: string, init?: any) => Promise<any>;
  retry?: RetryOptions;
  /** Backoff for saves queued offline (default 1,000 ms doubling to 30,000 ms). */
  offlineRetry?: { baseDelayMs?: number; maxDelayMs?: number };
  timers?: { setTimeout(f: () => void, ms: number): any; clearTimeout(t: any): void };
  /** For tests: builds the FsSyncClient for a project. */
  makeClient?: (projectId: string) => FsSyncClient;
}

export declare function createProjectEditorStore(options: ProjectEditorStoreOptions): StoreApi<ProjectEditorState>;
