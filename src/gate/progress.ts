// Progress for people: a redrawn bar on a terminal, plain lines in CI logs (a bar's carriage
// returns turn a CI log into one unreadable line).

export interface ProgressEvent {
  phase: string;
  done: number;
  total: number;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): (p: ProgressEvent) => void {
  const tty = Boolean(stream.isTTY) && !process.env.CI;
  let lastPhase = '';
  let lastDecile = -1;
  return ({ phase, done, total }) => {
    const share = total > 0 ? done / total : 1;
    if (tty) {
      const width = 30;
      const filled = Math.round(share * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      stream.write(`\r${bar} ${String(Math.round(share * 100)).padStart(3)}% ${phase} (${done}/${total})\x1b[K`);
      if (done >= total) stream.write('\n');
      return;
    }
    // In logs: one line when a phase starts, then every 10%.
    const decile = Math.floor(share * 10);
    if (phase !== lastPhase || decile !== lastDecile) {
      stream.write(`emgate: ${phase}: ${done}/${total} (${Math.round(share * 100)}%)\n`);
      lastPhase = phase;
      lastDecile = decile;
    }
  };
}
