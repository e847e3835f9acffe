// Entry point of the bundled Action (dist/index.js). run() catches everything itself and
// reports through the step status. A cancelled or timed-out job gets SIGINT/SIGTERM: the
// step then records an `error` verdict (report, outputs, summary, status) before it goes.
import { onInterrupt, run } from './main';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    onInterrupt(signal);
    process.exit(1);
  });
}

// Exit when run() is done: a comment given up on at the publish deadline may still hold
// sockets and retry timers that would keep the step alive. The exit code is the one run() set.
void run().then(() => process.exit());
