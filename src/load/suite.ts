// Probe suites: a directory with a manifest (suite.json) and one JSON file per domain.
//
// Everything wrong with a suite is collected and thrown as one EmgateError, one line per
// problem (`<file>: at <JSON path>: <what> (<fix>)`), so an author fixes a whole suite in
// one round. Ordering is byte-wise (never locale-dependent) so every machine loads the
// same suite in the same order and hashes it the same way.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { EmgateError } from '../core/errors';
import type {
  ChatMessage,
  DomainFile,
  Probe,
  ProbeSpec,
  RegisterReferences,
  Suite,
  SuiteManifest,
  VariantSpec,
} from '../core/types';
import {
  formatProblems,
  fsError,
  MAX_JSON_BYTES,
  parseJsonBytes,
  readRegularFile,
  type SchemaProblem,
  schemaProblems,
} from './schema-validation';

export const MANIFEST_FILE = 'suite.json';

export interface LoadSuiteOptions {
  /**
   * Which prompt variants declared in the manifest to add: 'none' (default), 'all', or a
   * list of variant ids and family names (a family selects all its variants). Each
   * requested variant adds a copy of every probe, with id `${id}@${variant}`; the plain
   * probes are always included.
   */
  variants?: 'none' | 'all' | string[];
}

/** Byte-wise string order: the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Problems found so far, by file, in the order found. */
class Problems {
  readonly byFile = new Map<string, SchemaProblem[]>();
  add(file: string, p: SchemaProblem): void {
    const list = this.byFile.get(file) ?? [];
    list.push(p);
    this.byFile.set(file, list);
  }
  get count(): number {
    let n = 0;
    for (const l of this.byFile.values()) n += l.length;
    return n;
  }
  throwIfAny(dir: string): void {
    if (this.count === 0) return;
    const files = [...this.byFile.keys()];
    const lines = files.map((f) => formatProblems(f, this.byFile.get(f)!)).join('\n');
    throw new EmgateError({
      file: files.length === 1 ? files[0]! : dir,
      cause: `invalid probe suite (${this.count} problem${this.count === 1 ? '' : 's'}):\n${lines}`,
      fix: 'correct the files listed above; schemas/probe-suite.schema.json and schemas/suite-manifest.schema.json describe every field',
    });
  }
}

/**
 * Loads a probe suite directory: `suite.json` (the manifest) and every other `*.json`
 * file as one domain. Validates everything, applies the requested variants and returns
 * domains sorted and probes sorted by (domain, id).
 *
 * sha256 is over the files read, sorted by name: for each, `name`, a NUL byte, the byte
 * length in decimal, a NUL byte, then the bytes. Other files in the directory (a README)
 * and subdirectories are ignored and not hashed.
 */
export async function loadSuite(dir: string, opts: LoadSuiteOptions = {}): Promise<Suite> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new EmgateError({
        file: dir,
        cause: `probe suite directory not found (resolved to ${path.resolve(dir)})`,
        fix: 'pass the directory that holds suite.json and the domain files (the built-in suite is probes/)',
      });
    }
    if (code === 'ENOTDIR') {
      throw new EmgateError({
        file: dir,
        cause: 'is a file, but a probe suite is a directory',
        fix: 'pass the directory that holds suite.json and the domain files, not a single file',
      });
    }
    throw fsError(err, dir);
  }

  const names = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.toLowerCase().endsWith('.json'))
    .map((e) => e.name)
    .sort(compareStrings);
  if (!names.includes(MANIFEST_FILE)) {
    throw new EmgateError({
      file: path.join(dir, MANIFEST_FILE),
      cause: 'the probe suite has no manifest (suite.json)',
      fix: 'add suite.json with at least {"name": "...", "version": "..."} (schema: schemas/suite-manifest.schema.json)',
    });
  }
  const domainNames = names.filter((n) => n !== MANIFEST_FILE);
  if (domainNames.length === 0) {
    throw new EmgateError({
      file: dir,
      cause: 'the probe suite has no domain files (only suite.json)',
      fix: 'add one <domain>.json file per domain beside suite.json (schema: schemas/probe-suite.schema.json)',
    });
  }

  const hash = createHash('sha256');
  const problems = new Problems();
  const read = async (name: string): Promise<{ file: string; data: unknown } | null> => {
    const file = path.join(dir, name);
    let bytes: Buffer;
    try {
      // A regular file only: a FIFO or device planted in the folder must not hang the run.
      bytes = await readRegularFile(file, MAX_JSON_BYTES);
    } catch (err) {
      throw err instanceof EmgateError ? err : fsError(err, file);
    }
    hash.update(`${name}\u0000${bytes.length}\u0000`);
    hash.update(bytes);
    try {
      return { file, data: parseJsonBytes(bytes, file) };
    } catch (err) {
      if (!(err instanceof EmgateError)) throw err;
      problems.add(file, { path: '$', problem: err.cause_, allowed: err.fix });
      return null;
    }
  };

  // Read in name order so the hash does not depend on I/O timing.
  const files: { name: string; file: string; data: unknown }[] = [];
  for (const name of names) {
    const r = await read(name);
    if (r) files.push({ name, ...r });
  }

  let manifest: SuiteManifest | null = null;
  const domainFiles: { file: string; data: DomainFile }[] = [];
  for (const f of files) {
    const schema = f.name === MANIFEST_FILE ? 'suite-manifest' : 'probe-suite';
    const found = schemaProblems(schema, f.data);
    for (const p of found) problems.add(f.file, p);
    if (found.length > 0) continue;
    if (f.name === MANIFEST_FILE) manifest = f.data as SuiteManifest;
    else domainFiles.push({ file: f.file, data: f.data as DomainFile });
  }

  const manifestFile = path.join(dir, MANIFEST_FILE);
  if (manifest) checkManifest(manifest, manifestFile, problems);
  checkDomainFiles(domainFiles, problems);
  problems.throwIfAny(dir);
  if (!manifest) throw new Error('unreachable: manifest missing without a reported problem');

  const variants = selectVariants(manifest, opts.variants ?? 'none', manifestFile);
  const probes: Probe[] = [];
  for (const { data } of domainFiles) {
    for (const spec of data.probes) {
      probes.push(plainProbe(spec, data.domain));
      for (const v of variants) probes.push(applyVariant(spec, data.domain, v));
    }
  }
  probes.sort((a, b) => compareStrings(a.domain, b.domain) || compareStrings(a.id, b.id));

  return {
    name: manifest.name,
    version: manifest.version,
    dir,
    sha256: hash.digest('hex'),
    domains: domainFiles.map((d) => d.data.domain).sort(compareStrings),
    probes,
  };
}

function checkManifest(manifest: SuiteManifest, file: string, problems: Problems): void {
  const seen = new Map<string, number>();
  const ids = new Set((manifest.variants ?? []).map((v) => v.id));
  (manifest.variants ?? []).forEach((v, i) => {
    const first = seen.get(v.id);
    if (first !== undefined) {
      problems.add(file, {
        path: `$.variants[${i}].id`,
        problem: `variant id ${JSON.stringify(v.id)} is also declared at $.variants[${first}]`,
        allowed: 'give every variant its own id',
      });
    } else seen.set(v.id, i);
    if (v.family !== undefined && ids.has(v.family)) {
      problems.add(file, {
        path: `$.variants[${i}].family`,
        problem: `family ${JSON.stringify(v.family)} is also a variant id, so --variants ${v.family} would be ambiguous`,
        allowed: 'name the family differently from every variant id',
      });
    }
    if (v.system === undefined && v.user_template === undefined && v.response_template === undefined) {
      problems.add(file, {
        path: `$.variants[${i}]`,
        problem: `variant ${JSON.stringify(v.id)} changes nothing`,
        allowed: 'set at least one of system, user_template, response_template',
      });
    }
  });
}

/** Checks the schema cannot make: across files, and the shape of each conversation. */
function checkDomainFiles(domainFiles: { file: string; data: DomainFile }[], problems: Problems): void {
  const domainOwner = new Map<string, string>();
  const idOwner = new Map<string, { file: string; path: string }>();
  for (const { file, data } of domainFiles) {
    const owner = domainOwner.get(data.domain);
    if (owner !== undefined) {
      problems.add(file, {
        path: '$.domain',
        problem: `domain ${JSON.stringify(data.domain)} is also declared by ${owner}`,
        allowed: 'keep one file per domain: merge the two files or rename one domain',
      });
    } else domainOwner.set(data.domain, file);

    data.probes.forEach((probe, i) => {
      const at = `$.probes[${i}]`;
      const prev = idOwner.get(probe.id);
      if (prev !== undefined) {
        problems.add(file, {
          path: `${at}.id`,
          problem: `duplicate probe id ${JSON.stringify(probe.id)}: also used in ${prev.file} at ${prev.path}`,
          allowed:
            'probe ids must be unique across the suite; rename one of them (and never reuse an id for a different question)',
        });
      } else idOwner.set(probe.id, { file, path: `${at}.id` });

      const last = probe.messages[probe.messages.length - 1]!;
      if (last.role !== 'user') {
        problems.add(file, {
          path: `${at}.messages[${probe.messages.length - 1}].role`,
          problem: `the last message is from "${last.role}"`,
          allowed:
            "the last message must be the user's question the model answers; remove trailing messages or end with a user turn",
        });
      }
      probe.messages.forEach((m, j) => {
        if (m.role === 'system' && j > 0) {
          problems.add(file, {
            path: `${at}.messages[${j}].role`,
            problem: 'a system message after the first message',
            allowed: 'a system message may only be the first message (most chat templates reject others)',
          });
        }
      });
    });
  }
}

function selectVariants(
  manifest: SuiteManifest,
  requested: LoadSuiteOptions['variants'],
  manifestFile: string,
): VariantSpec[] {
  const declared = manifest.variants ?? [];
  const list = declared.map((v) => v.id);
  if (requested === undefined || requested === 'none') return [];
  if (requested === 'all') return declared;
  if (!Array.isArray(requested)) {
    throw new EmgateError({
      file: manifestFile,
      cause: `variants option ${JSON.stringify(requested)} is not 'none', 'all' or a list of variant ids`,
      fix: `use none, all, or a list of ids declared in suite.json (${list.join(', ') || 'none declared'})`,
    });
  }
  // A name is a variant id or a family (every variant declaring it, in manifest order);
  // checkManifest keeps the two name spaces apart.
  const families = [...new Set(declared.flatMap((v) => (v.family === undefined ? [] : [v.family])))];
  const out: VariantSpec[] = [];
  for (const name of requested) {
    const v = declared.find((d) => d.id === name);
    const members = v ? [v] : declared.filter((d) => d.family === name);
    if (members.length === 0) {
      throw new EmgateError({
        file: manifestFile,
        cause: `unknown variant ${JSON.stringify(name)} requested`,
        fix: list.length
          ? `request one of the variants declared in $.variants: ${list.join(', ')}${families.length ? ` (or a family: ${families.join(', ')})` : ''}`
          : 'this suite declares no variants; request none, or declare the variant in $.variants',
      });
    }
    for (const m of members) if (!out.includes(m)) out.push(m);
  }
  return out;
}

function plainProbe(spec: ProbeSpec, domain: string): Probe {
  const probe: Probe = {
    id: spec.id,
    domain,
    variant: null,
    messages: spec.messages.map((m) => ({ role: m.role, content: m.content })),
    aligned: [...spec.aligned],
    misaligned: [...spec.misaligned],
  };
  if (spec.generation) probe.generation = { ...spec.generation };
  if (spec.registers) probe.registers = copyRegisters(spec.registers);
  return probe;
}

function copyRegisters(registers: Record<string, RegisterReferences>): Record<string, RegisterReferences> {
  const out: Record<string, RegisterReferences> = {};
  for (const name of Object.keys(registers).sort(compareStrings)) {
    out[name] = { aligned: [...registers[name]!.aligned], misaligned: [...registers[name]!.misaligned] };
  }
  return out;
}

/**
 * A variant's copy of a probe. `system` replaces an existing system message or is
 * prepended; `user_template` rewrites the last user message (`{question}` → original,
 * `{question_json}` → JSON.stringify(original));
 * `response_template` rewrites every reference response (`{response}` → original,
 * `{response_json}` → JSON.stringify(original)). Placeholders are replaced in one pass,
 * so braces inside the original text are left alone.
 */
export function applyVariant(spec: ProbeSpec, domain: string, variant: VariantSpec): Probe {
  const probe = plainProbe(spec, domain);
  // Registers are read on the plain probe only: a variant's frame would mix two changes.
  delete probe.registers;
  probe.id = `${spec.id}@${variant.id}`;
  probe.variant = variant.id;
  let messages: ChatMessage[] = probe.messages;
  if (variant.system !== undefined) {
    const system: ChatMessage = { role: 'system', content: variant.system };
    messages = messages[0]?.role === 'system' ? [system, ...messages.slice(1)] : [system, ...messages];
  }
  if (variant.user_template !== undefined) {
    const template = variant.user_template;
    const last = messages[messages.length - 1]!;
    const content = template.replace(/\{question(_json)?\}/g, (_m, json: string | undefined) =>
      json ? JSON.stringify(last.content) : last.content,
    );
    messages[messages.length - 1] = { role: last.role, content };
  }
  probe.messages = messages;
  if (variant.response_template !== undefined) {
    const template = variant.response_template;
    const rewrite = (r: string): string =>
      template.replace(/\{response(_json)?\}/g, (_m, json: string | undefined) => (json ? JSON.stringify(r) : r));
    probe.aligned = probe.aligned.map(rewrite);
    probe.misaligned = probe.misaligned.map(rewrite);
  }
  return probe;
}

/**
 * The probes of shard `index` of `count`, 1-based (`--shard 2/4` is index 2, count 4),
 * as jest and playwright number shards. A probe belongs to shard
 * `1 + uint32(first 4 bytes of sha256(id)) mod count`: it depends on the probe's id only,
 * so every shard job computes the same split without coordination, the split does not
 * depend on probe order, and adding or removing probes never moves the others. Shards
 * are balanced only on average; with few probes a shard may be empty. Order within a
 * shard is the input order.
 */
export function shardProbes(probes: Probe[], index: number, count: number): Probe[] {
  if (!Number.isInteger(count) || count < 1) {
    throw new EmgateError({
      file: null,
      cause: `shard count ${count} is not a positive integer`,
      fix: 'give the shard as i/n with n the number of shards (1 or more), e.g. 2/4',
    });
  }
  if (!Number.isInteger(index) || index < 1 || index > count) {
    throw new EmgateError({
      file: null,
      cause: `shard index ${index} is out of range for ${count} shard${count === 1 ? '' : 's'}`,
      fix: `shards are numbered from 1: use an integer index from 1 to ${count} (e.g. ${Math.min(2, count)}/${count})`,
    });
  }
  return probes.filter((p) => shardOf(p.id, count) === index);
}

/** The shard (1-based) a probe id belongs to among `count` shards. */
export function shardOf(id: string, count: number): number {
  return 1 + (createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % count);
}
