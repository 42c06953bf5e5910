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

/**
 * Hands the package the app's own SHA-256: a function returning the lowercase hex digest of a
 * string (its UTF-8 bytes) or of bytes, synchronously, such as react-native-quick-crypto's
 * `(x) => createHash('sha256').update(x).digest('hex')`. It is checked against the built-in hash
 * on fixed inputs (throws `FsSyncError` `invalid`, `details.argument` `digest`, when it
 * disagrees), then used by `contentHash` and by the client's no-op detection (`save`,
 * `isDirty`). `undefined` goes back to the built-in hash.
 */
export declare function setDigest(digest: ((input: string | Uint8Array) => string) | undefined): void;

/** The error class every call throws; `error instanceof FsSyncError` and `error instanceof Error` hold. */
export declare const FsSyncError: new (
  kind: string,
  message: string,
  details?: unknown,
  status?: number | null,
  code?: string | null,
) => FsSyncErrorShape;
