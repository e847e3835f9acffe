// Reading user JSON files and checking them against the JSON Schemas that ship in
// `schemas/`. The one place that imports ajv: loaders (policy, suite, direction) call
// `readJsonFile`/`parseJsonBytes` and `validateAgainst` and never see ajv's error objects.
//
// Every problem becomes one line `<file>: at <JSON path>: <what is wrong> (<what is
// allowed / how to fix>)`, and all lines of one file go into one EmgateError, so a user
// fixes everything in one CI round instead of one field per push.
//
// Over 500 lines on purpose: the one door to ajv and the one reader of user JSON (bytes,
// UTF-8, duplicate keys, every problem in words) stay together, so no loader reads JSON
// another way.

import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import * as fs from 'fs';
import * as path from 'path';
import { closest } from '../core/closest';
import { EmgateError } from '../core/errors';
import { PACKAGE_ROOT } from './package-info';
import { readGuarded } from './regular-file';

// ---------------------------------------------------------------------------
// Where the shipped files live

/**
 * A shipped folder (`schemas/`, `policies/`, `probes/`) under the package root. The
 * existence check turns a broken install into a readable error instead of an ENOENT deep
 * in a loader.
 */
export function packageDir(sub: 'schemas' | 'policies' | 'probes'): string {
  const dir = path.join(PACKAGE_ROOT, sub);
  if (!fs.existsSync(dir)) {
    throw new EmgateError({
      file: dir,
      cause: `the packaged ${sub}/ folder is missing (looked in ${PACKAGE_ROOT})`,
      fix: `reinstall emgate; a bundled copy must ship ${sub}/ next to its dist/ or lib/ folder`,
    });
  }
  return dir;
}

// ---------------------------------------------------------------------------
// Reading JSON

/**
 * Reads a JSON file. Throws EmgateError when the file is missing, unreadable, a
 * directory, empty, or not valid JSON (with line:column of the syntax error).
 */
export async function readJsonFile(file: string): Promise<unknown> {
  return parseJsonBytes(await readFileBytes(file), file);
}

/** Largest JSON file a loader reads (policies, suites, direction files): far above any real one. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Reads a file's bytes (readRegularFile), turning fs errors into EmgateErrors that say what to do. */
export async function readFileBytes(file: string, maxBytes = MAX_JSON_BYTES): Promise<Buffer> {
  try {
    return await readRegularFile(file, maxBytes);
  } catch (err) {
    throw err instanceof EmgateError ? err : fsError(err, file);
  }
}

/**
 * A regular file's bytes (a symlink to one is fine), up to `maxBytes`, through the guarded
 * reader (regular-file.ts), so a FIFO, socket or device planted in a folder never hangs the
 * run. Throws an EmgateError for the wrong kind of file or size, the fs error (with its
 * code) otherwise.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  const got = await readGuarded(file, maxBytes);
  if ('data' in got) return got.data;
  const r = got.refused;
  if ('bytes' in r) {
    throw new EmgateError({
      file,
      cause: `is ${r.bytes} bytes, over the ${r.maxBytes}-byte limit for this file`,
      fix: 'name the right file; no file of this kind is anywhere near that large',
    });
  }
  if (r.kind === 'a directory')
    throw Object.assign(new Error('EISDIR: illegal operation on a directory'), { code: 'EISDIR' });
  const kind = r.kind === 'a FIFO' ? 'a FIFO (named pipe)' : r.kind;
  throw new EmgateError({ file, cause: `is ${kind}, not a regular file`, fix: 'name a regular file' });
}

/** Turns an fs error into an EmgateError naming the file (exported for other loaders). */
export function fsError(err: unknown, file: string): EmgateError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const abs = path.resolve(file);
  switch (code) {
    case 'ENOENT':
      return new EmgateError({
        file,
        cause: `file not found (resolved to ${abs})`,
        fix: 'check the path; relative paths are resolved from the working directory, or from the extending file for a policy `extends`',
      });
    case 'EISDIR':
      return new EmgateError({ file, cause: 'is a directory, not a file', fix: 'name the JSON file itself' });
    case 'EACCES':
    case 'EPERM':
      return new EmgateError({
        file,
        cause: `cannot be read: permission denied (${code})`,
        fix: 'make the file readable by the user the job runs as',
      });
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return new EmgateError({
        file,
        cause: `cannot be read: ${message}`,
        fix: 'check that the file exists and is readable',
      });
    }
  }
}

/**
 * Parses a file's bytes as JSON. A UTF-8 byte-order mark is skipped (editors on Windows
 * write one and JSON.parse rejects it); the bytes hashed for provenance stay untouched.
 */
export function parseJsonBytes(bytes: Buffer, file: string): unknown {
  let text = decodeUtf8(bytes, file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') {
    throw new EmgateError({
      file,
      cause: 'file is empty, expected JSON',
      fix: 'write the JSON document into the file',
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new EmgateError({
      file,
      cause: jsonSyntaxProblem(text),
      fix: 'correct the JSON syntax there (JSON allows no comments, no trailing commas and only double-quoted strings)',
    });
  }
}

/**
 * Where and why text that JSON.parse rejected is not JSON: "invalid JSON at line L, column
 * C: expected … but found …", never the text itself. A file that fails to parse may be
 * anything (a policy's `extends` or a suite's symlink can name /etc/passwd or a key file),
 * and this message goes into report.json and the PR comment. JSON.parse's own message is
 * not used: newer Node versions quote the text in it (`Unexpected token 'r', "root:x:0:0"...`).
 */
export function jsonSyntaxProblem(text: string): string {
  const at = findJsonSyntaxError(text) ?? { offset: 0, problem: 'not valid JSON' };
  const { line, column } = lineColumn(text, at.offset);
  return `invalid JSON at line ${line}, column ${column}: ${at.problem}`;
}

/**
 * The file's text, refusing bytes that are not UTF-8 (JSON must be UTF-8). Decoding them
 * leniently would turn them into U+FFFD and score, hash and show text nobody wrote.
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new EmgateError({
      file,
      cause: `is not valid UTF-8 (first bad byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at byte offset ${at})`,
      fix: 'save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8, or "Save with encoding: UTF-8" in an editor)',
    });
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len === 0) return i;
    for (let k = 1; k < len; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    i += len;
  }
  return Math.max(0, b.length - 1);
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Finds the first syntax error in text that JSON.parse rejected: a small RFC 8259
 * recognizer that returns the offset and what was expected there. Only run on failure.
 */
export function findJsonSyntaxError(text: string): { offset: number; problem: string } | null {
  let i = 0;
  class Stop {
    constructor(
      readonly offset: number,
      readonly problem: string,
    ) {}
  }
  // Only JSON's own punctuation is quoted; any other character is named by its class, so no
  // file content (a letter of a password) reaches a message.
  const describe = (at: number): string => {
    if (at >= text.length) return 'the end of the file';
    const c = text[at]!;
    if ('{}[],:"\''.includes(c)) return JSON.stringify(c);
    if (/\s/.test(c)) return 'a whitespace character';
    if (/[A-Za-z]/.test(c)) return 'a letter';
    if (/[0-9]/.test(c)) return 'a digit';
    if (c.charCodeAt(0) < 0x20) return 'a control character';
    if (c.charCodeAt(0) < 0x7f) return 'a punctuation character';
    return 'a non-ASCII character';
  };
  const fail = (expected: string, at = i): never => {
    throw new Stop(at, `expected ${expected} but found ${describe(at)}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail('a value (string, number, object, array, true, false or null)');
  };
  const string = (): void => {
    if (text[i] !== '"') fail('a double-quoted string');
    i++;
    for (;;) {
      if (i >= text.length) fail('a closing " of the string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail('no raw control character inside a string (write \\n, \\t ...)');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('a valid escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)', i + 1);
      } else i++;
    }
  };
  const number = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail('a number');
    i += m![0].length;
    if (i < text.length && /[0-9.eE]/.test(text[i]!))
      fail('the end of the number (no leading zeros, digits after "." and "e")');
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a double-quoted property name');
        string();
        ws();
        if (text[i] !== ':') fail('":" after the property name');
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail('"," or "}" after the property value');
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail('"," or "]" after the array element');
      }
    } else if (c === '"') string();
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else fail('a value (string, number, object, array, true, false or null)');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of the file after the JSON value');
    return null;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, problem: e.problem };
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Schema validation

/** One schema violation, already in words. */
export interface SchemaProblem {
  /** JSON path of the offending value, e.g. `$.overall.max_rate`, `$.probes[3].id`. */
  path: string;
  /** What is wrong. */
  problem: string;
  /** What is allowed, or how to fix it. */
  allowed: string;
}

/** EmgateError for schema violations; keeps the problems for callers that list them. */
export class SchemaValidationError extends EmgateError {
  constructor(
    file: string,
    readonly schema: string,
    readonly problems: SchemaProblem[],
  ) {
    super({
      file,
      cause: `does not match schemas/${schema}.schema.json (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${formatProblems(file, problems)}`,
      fix: `correct the fields listed above; schemas/${schema}.schema.json describes every field`,
    });
    this.name = 'SchemaValidationError';
  }
}

/** At most this many lines per file go into a message; the rest are counted. */
const MAX_LINES = 50;

/** Renders problems as `<file>: at <path>: <problem> (<allowed>)`, one per line. */
export function formatProblems(file: string, problems: SchemaProblem[]): string {
  const lines = problems.slice(0, MAX_LINES).map((p) => `${file}: at ${p.path}: ${p.problem} (${p.allowed})`);
  if (problems.length > MAX_LINES) lines.push(`${file}: ... and ${problems.length - MAX_LINES} more problems`);
  return lines.join('\n');
}

let ajv: Ajv | null = null;
const compiled = new Map<string, ValidateFunction>();

/**
 * The compiled validator for `schemas/<name>.schema.json`. One Ajv instance; each
 * schema is compiled the first time it is needed (so a broken schema only breaks its
 * own file type) and cached.
 */
function validatorFor(name: string): ValidateFunction {
  const cached = compiled.get(name);
  if (cached) return cached;
  if (!/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new Error(`schema name "${name}" is not a plain schemas/<name>.schema.json name`);
  }
  const file = path.join(packageDir('schemas'), `${name}.schema.json`);
  let schema: unknown;
  try {
    schema = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EmgateError({
      file,
      cause: `the packaged schema cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      fix: 'reinstall emgate; the schemas/ folder must ship with it',
    });
  }
  // `verbose` puts the schema and data beside each error, which the messages use to
  // list allowed keys and values and to quote the offending value.
  ajv ??= new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
  const validate = ajv.compile(schema as object);
  compiled.set(name, validate);
  return validate;
}

/**
 * Validates data against `schemas/<schemaName>.schema.json` (name without the suffix,
 * e.g. "policy"). Throws SchemaValidationError (an EmgateError) listing every problem.
 */
export function validateAgainst(schemaName: string, data: unknown, file: string): void {
  const problems = schemaProblems(schemaName, data);
  if (problems.length > 0) throw new SchemaValidationError(file, schemaName, problems);
}

/** Like validateAgainst, but returns the problems (empty when valid) instead of throwing. */
export function schemaProblems(schemaName: string, data: unknown): SchemaProblem[] {
  const validate = validatorFor(schemaName);
  if (validate(data)) return [];
  return describeErrors(validate.errors ?? []);
}

/** JSON pointer (`/a/0/b~1c`) to a JSON path (`$.a[0]["b/c"]`). */
export function jsonPath(pointer: string): string {
  if (pointer === '') return '$';
  return (
    '$' +
    pointer
      .split('/')
      .slice(1)
      .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((seg) =>
        /^\d+$/.test(seg)
          ? `[${seg}]`
          : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)
            ? `.${seg}`
            : `[${JSON.stringify(seg)}]`,
      )
      .join('')
  );
}

function childPath(pointer: string, key: string): string {
  return jsonPath(`${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number')
    return !Number.isFinite(v) ? 'not a finite number' : Number.isInteger(v) ? 'an integer' : 'a number';
  return `a ${typeof v}`;
}

/**
 * A value for a message. Strings are described, never quoted: the file may not be the
 * user's own (an `extends` or a suite's symlink can reach any JSON file, a key file
 * included), and the message goes into the report and the PR comment. The JSON path says
 * where to look.
 */
function show(v: unknown): string {
  if (typeof v === 'string') return `a string of ${v.length} character${v.length === 1 ? '' : 's'}`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? `an array of ${v.length}` : 'an object';
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A key name for a message: keys are structure, but a long one may be content (kept to 40 characters). */
function shortKey(k: string): string {
  return k.length > 40 ? `${k.slice(0, 37)}...` : k;
}

/** Appends the first sentence of the schema's description (what the field is for). */
function withDescription(text: string, schema: unknown): string {
  const d = (schema as { description?: unknown } | undefined)?.description;
  if (typeof d !== 'string' || d === '') return text;
  const first = /^(.*?[.!?])(?=\s+[A-Z])/.exec(d)?.[1] ?? d;
  return `${text}; ${first.replace(/\.$/, '')}`;
}

/** Turns ajv errors into problems in words, one per offending value, in ajv's order. */
function describeErrors(errors: ErrorObject[]): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const p = describeError(e);
    if (!p) continue;
    const key = `${p.path}\u0000${p.problem}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function describeError(e: ErrorObject): SchemaProblem | null {
  // Errors raised inside `propertyNames` are about a key, and the `propertyNames` error
  // that follows them names that key; report only that one.
  if ((e as { propertyName?: string }).propertyName !== undefined) return null;
  const at = jsonPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = shortKey(String(params.additionalProperty));
      const allowed = Object.keys((parent?.properties as object | undefined) ?? {});
      const hint = closest(key, allowed);
      return {
        path: childPath(e.instancePath, key),
        problem: `unknown key ${JSON.stringify(key)}`,
        allowed:
          (allowed.length ? `allowed keys here: ${allowed.join(', ')}` : 'no keys are allowed here') +
          (hint ? `; did you mean ${JSON.stringify(hint)}?` : ''),
      };
    }
    case 'required': {
      const key = String(params.missingProperty);
      const propSchema = (parent?.properties as Record<string, unknown> | undefined)?.[key];
      return {
        path: at,
        problem: `missing required key ${JSON.stringify(key)}`,
        allowed: withDescription(`add ${JSON.stringify(key)}`, propSchema),
      };
    }
    case 'type': {
      const expected = String(params.type).replace(/,/g, ' or ');
      return {
        path: at,
        problem:
          typeof e.data === 'string' || (e.data !== null && typeof e.data === 'object')
            ? `is ${kindOf(e.data)}`
            : `is ${kindOf(e.data)} (${show(e.data)})`,
        allowed: withDescription(`expected ${expected}`, parent),
      };
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      return { path: at, problem: `${show(e.data)} is not an allowed value`, allowed: `allowed values: ${allowed}` };
    }
    case 'const':
      return {
        path: at,
        problem: `is ${show(e.data)}`,
        allowed: `must be exactly ${JSON.stringify(params.allowedValue)}`,
      };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const range = numberRange(parent);
      return {
        path: at,
        problem: `${show(e.data)} is out of range`,
        allowed: withDescription(
          `must be ${params.comparison} ${params.limit}${range ? `, allowed range ${range}` : ''}`,
          parent,
        ),
      };
    }
    case 'multipleOf':
      return {
        path: at,
        problem: `${show(e.data)} is not a multiple of ${params.multipleOf}`,
        allowed: withDescription('use a multiple', parent),
      };
    case 'pattern':
      return {
        path: at,
        problem: `${show(e.data)} does not have the expected form`,
        allowed: withDescription(`must match the pattern ${params.pattern}`, parent),
      };
    case 'format':
      return {
        path: at,
        problem: `${show(e.data)} is not a valid ${params.format}`,
        allowed: withDescription(`write a ${params.format}`, parent),
      };
    case 'minLength':
      return {
        path: at,
        problem: e.data === '' ? 'is empty' : `is shorter than ${params.limit} characters`,
        allowed: withDescription(`write at least ${params.limit} character${params.limit === 1 ? '' : 's'}`, parent),
      };
    case 'maxLength':
      return {
        path: at,
        problem: `is ${String(e.data).length} characters long`,
        allowed: withDescription(`at most ${params.limit} characters`, parent),
      };
    case 'minItems':
      return {
        path: at,
        problem: `has ${(e.data as unknown[]).length} item${(e.data as unknown[]).length === 1 ? '' : 's'}`,
        allowed: withDescription(`needs at least ${params.limit}`, parent),
      };
    case 'maxItems':
      return {
        path: at,
        problem: `has ${(e.data as unknown[]).length} items`,
        allowed: withDescription(`at most ${params.limit}`, parent),
      };
    case 'uniqueItems':
      return {
        path: at,
        problem: `items ${params.j} and ${params.i} are the same`,
        allowed: withDescription('every item must be unique', parent),
      };
    case 'propertyNames': {
      const names = (parent?.propertyNames ?? {}) as Record<string, unknown>;
      const rule = typeof names.pattern === 'string' ? `must match the pattern ${names.pattern}` : 'rename the key';
      return {
        path: childPath(e.instancePath, String(params.propertyName)),
        problem: `key ${JSON.stringify(shortKey(String(params.propertyName)))} is not an allowed name`,
        allowed: withDescription(rule, names),
      };
    }
    case 'if':
    case 'anyOf':
    case 'oneOf':
      // The sub-schemas' own errors (reported beside this one) say what is wrong.
      if (e.keyword === 'if') return null;
      return {
        path: at,
        problem: `${show(e.data)} matches none of the allowed forms`,
        allowed: withDescription(e.message ?? '', parent),
      };
    default:
      return {
        path: at,
        problem: e.message ?? `fails "${e.keyword}"`,
        allowed: withDescription(`schema keyword ${e.keyword}`, parent),
      };
  }
}

function numberRange(schema: Record<string, unknown> | undefined): string | null {
  if (!schema) return null;
  const lo =
    typeof schema.exclusiveMinimum === 'number'
      ? `(${schema.exclusiveMinimum}`
      : typeof schema.minimum === 'number'
        ? `[${schema.minimum}`
        : null;
  const hi =
    typeof schema.exclusiveMaximum === 'number'
      ? `${schema.exclusiveMaximum})`
      : typeof schema.maximum === 'number'
        ? `${schema.maximum}]`
        : null;
  if (lo && hi) return `${lo}, ${hi}`;
  if (lo) return `${lo}, ∞)`;
  if (hi) return `(-∞, ${hi}`;
  return null;
}
