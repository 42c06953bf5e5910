export {
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

/**
 * Lowercase hex SHA-256 of a string (its UTF-8 bytes) or of bytes; equals the database's
 * content_hash. Anything else throws an `FsSyncError` of kind `invalid`.
 */
export declare function contentHash(input: string | Uint8Array): string;

/** The error class every call throws; `error instanceof FsSyncError` and `error instanceof Error` hold. */
export declare const FsSyncError: new (
  kind: string,
  message: string,
  details?: unknown,
  status?: number | null,
  code?: string | null,
) => FsSyncErrorShape;
