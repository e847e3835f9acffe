// Where the package's shipped files live. src/, lib/ and dist/ all sit one level below the
// package root, so one relative path serves the tests, the CLI and the bundled Action.
import { readFileSync } from 'fs';
import * as path from 'path';

export const PACKAGE_ROOT = path.join(__dirname, '..');

export const BUILTIN_PROBES = path.join(PACKAGE_ROOT, 'probes');
export const BUILTIN_POLICY = path.join(PACKAGE_ROOT, 'policies', 'default.json');
export const ORGANISMS_DIR = path.join(PACKAGE_ROOT, 'examples', 'organisms');

export const EMGATE_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
