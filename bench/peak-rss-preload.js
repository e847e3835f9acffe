// Preloaded (node -r) by bench/gate-run.js: writes the process's peak RSS in MB (VmHWM) to
// $EMGATE_PEAK_RSS_FILE as it exits.
'use strict';
const fs = require('fs');

process.on('exit', () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (m && process.env.EMGATE_PEAK_RSS_FILE)
    fs.writeFileSync(process.env.EMGATE_PEAK_RSS_FILE, String(Number(m[1]) / 1024));
});
