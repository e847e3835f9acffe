// CI's drift check (scripts/check-dist.sh, run by .ci/run) on a scratch copy of the
// project: it passes on a committed tree and fails, naming the fix, once a source changes
// without `npm run bundle`.
import { spawnSync } from 'child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
let copy: string;

beforeAll(() => {
  copy = mkdtempSync(path.join(os.tmpdir(), 'emgate-dist-'));
  for (const item of ['src', 'dist', 'scripts', 'schemas', 'package.json', 'tsconfig.json', 'tsconfig.build.json'])
    cpSync(path.join(ROOT, item), path.join(copy, item), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

const check = () => spawnSync('bash', [path.join(copy, 'scripts', 'check-dist.sh')], { encoding: 'utf8' });

it('passes when dist/ is what the sources build to', () => {
  const r = check();
  expect(r.stdout).toContain('dist/ is up to date');
  expect(r.status).toBe(0);
}, 60_000);

it('fails when a source changed and dist/ was not rebuilt', () => {
  const file = path.join(copy, 'src', 'gate', 'error-report.ts');
  const source = readFileSync(file, 'utf8');
  const changed = source.replace('`The gate could not run: ', '`The gate could not run here: ');
  expect(changed).not.toBe(source); // the edit must change code (not a comment), or the check has nothing to find
  writeFileSync(file, changed);
  const r = check();
  expect(r.status).toBe(1);
  expect(r.stderr).toContain('dist/ does not match the sources');
  expect(r.stderr).toContain('run `npm run bundle` and commit dist/');
}, 60_000);
