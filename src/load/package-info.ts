// Where the package's shipped files live: the one package-root finder. The code runs from
// src/<layer>/ under ts-jest, lib/<layer>/ after `tsc`, and dist/ after bundling, so it
// walks up from its own folder to the first package.json named "emgate".
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'emgate') return dir;
      } catch {
        // an unreadable package.json on the way up is not ours; keep walking
      }
    }
    if (path.dirname(dir) === dir) return path.join(start, '..');
  }
}

export const PACKAGE_ROOT = findPackageRoot(__dirname);

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
