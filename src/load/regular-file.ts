// The one guarded reader of files a run did not write itself (JSON inputs, checkpoint
// files, cache entries, the output folder's lock and report): a regular file's bytes,
// never blocking. The name is opened without waiting for a FIFO's writer (O_NONBLOCK) and,
// where a link is not acceptable, without following one (O_NOFOLLOW); the open
// descriptor's type and size decide before a byte is read, and at most one byte past the
// limit is read, so a file that grows after the stat is caught too. A FIFO, socket or
// device planted under a name (tar and so actions/cache restore FIFOs; a pull request can
// commit one) never hangs the run. Each caller words the refusal for its reader:
// schema-validation.ts's readRegularFile as an error, cache.ts's as a miss.
import { constants as C, promises as fs, type Stats } from 'fs';

/** Why a name was not read: what stands there instead, or how large it is. */
export type Refused =
  | { kind: 'a FIFO' | 'a socket' | 'a device' | 'a directory' | 'a symbolic link' }
  | { bytes: number; maxBytes: number };

/**
 * The file's bytes, or why it was not read. fs errors other than the kind of file (ENOENT,
 * EACCES, a link loop when links are followed …) are thrown as they are.
 */
export async function readGuarded(
  file: string,
  maxBytes: number,
  opts: { followLinks?: boolean } = {},
): Promise<{ data: Buffer } | { refused: Refused }> {
  const followLinks = opts.followLinks ?? true;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, C.O_RDONLY | C.O_NONBLOCK | (followLinks ? 0 : C.O_NOFOLLOW));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' && !followLinks) return { refused: { kind: 'a symbolic link' } };
    if (code === 'ENXIO') return { refused: { kind: 'a socket' } };
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { refused: { kind: kindOf(st) } };
    if (st.size > maxBytes) return { refused: { bytes: st.size, maxBytes } };
    const buf = Buffer.alloc(Math.min(maxBytes + 1, st.size + 1));
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n > maxBytes) return { refused: { bytes: n, maxBytes } };
    return { data: buf.subarray(0, n) };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function kindOf(st: Stats): 'a FIFO' | 'a socket' | 'a device' | 'a directory' {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}
