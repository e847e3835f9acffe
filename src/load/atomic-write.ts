// The one atomic writer: every report and direction file emgate writes goes through here.
// The content goes to a temporary file beside the target and is renamed over it, so a
// reader (or a crash) sees the old file or the new one, never half of one. The temporary
// name carries the pid and a random part: two writers never share one. Text passes through
// the one redaction pass first (core/redact.ts): no registered secret reaches a file.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { redactSecrets } from '../core/redact';

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(file: string, content: string | Uint8Array): Promise<void> {
  const tmp = tempName(file);
  try {
    await fs.promises.writeFile(tmp, typeof content === 'string' ? redactSecrets(content) : content);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The same, synchronously: for a signal handler, which must finish before the process exits. */
export function writeFileAtomicSync(file: string, content: string | Uint8Array): void {
  const tmp = tempName(file);
  try {
    fs.writeFileSync(tmp, typeof content === 'string' ? redactSecrets(content) : content);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
