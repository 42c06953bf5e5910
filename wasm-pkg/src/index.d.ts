export {
  contentHash,
  validatePath,
  inferFileType,
  FsSyncClient,
  FileType,
  FsSyncErrorKind,
  FsSyncErrorShape,
  RetryOptions,
  ClientOptions,
  Head,
  KnownHead,
  FileInput,
  BulkResult,
  LoadResult,
  ApplyResult,
  CatchUpResult,
} from './web/fs_sync.js';
import type { FsSyncErrorShape } from './web/fs_sync.js';

/** The error class every call throws; `error instanceof FsSyncError` and `error instanceof Error` hold. */
export declare const FsSyncError: new (
  kind: string,
  message: string,
  details?: unknown,
  status?: number | null,
  code?: string | null,
) => FsSyncErrorShape;
