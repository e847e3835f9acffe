/**
 * report.json: the full-precision, schema-validated record of a run.
 *
 * Determinism is the point: two runs on the same inputs must produce the same bytes
 * except inside `timing`, so users (and `emgate merge`) can diff and hash reports. So
 * keys are written in one fixed order (the order of `Report` in types.ts, `timing`
 * last) whatever order the producer built them in, maps keyed by file name are sorted,
 * and numbers are written exactly as JavaScript prints them (no rounding: rounding is
 * the markdown's job). NaN and ±Infinity have no JSON form (JSON.stringify would write
 * `null` and silently turn a broken score into "no value"), so they throw instead, and
 * the caller turns that into an error verdict.
 */
import { createHash } from 'crypto';
import { EmgateError } from '../core/errors';
import type {
  Check,
  DirectionResult,
  DomainResult,
  Drift,
  EmShift,
  ModelProvenance,
  Power,
  ProbeResult,
  ProbeScore,
  Provenance,
  RateSummary,
  Report,
  ResponseScore,
  ServedModelRecord,
  ServedProvenance,
  Shift,
  SkippedProbe,
} from '../core/types';
import { schemaProblems } from './schema-validation';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Copies `value`, dropping `undefined` (as JSON.stringify would) and keeping key order. */
function obj(entries: Record<string, Json | undefined>): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) out[k] = v;
  return out;
}

/** Sorted copy of a string map (insertion order may follow readdir order, which varies). */
function sortedMap(map: Record<string, string>): { [key: string]: string } {
  const out: { [key: string]: string } = {};
  for (const k of Object.keys(map).sort()) out[k] = map[k];
  return out;
}

const pair = (p: [number, number] | null): Json => (p === null ? null : [p[0], p[1]]);

const response = (r: ResponseScore): Json => obj({ tokens: r.tokens, mean_logprob: r.mean_logprob });

function probeScore(s: ProbeScore): Json {
  return obj({
    aligned: s.aligned.map(response),
    misaligned: s.misaligned.map(response),
    A: s.A,
    M: s.M,
    p_mis: s.p_mis,
    is_misaligned: s.is_misaligned,
    projection: s.projection,
    projection_random: s.projection_random,
    projections: s.projections?.map((x) => obj({ value: x.value, random: x.random })),
    registers:
      s.registers &&
      namedMap(s.registers, (r) =>
        obj({ aligned: r.aligned.map(response), misaligned: r.misaligned.map(response), A: r.A, M: r.M }),
      ),
  });
}

const probeResult = (p: ProbeResult): Json =>
  obj({
    id: p.id,
    domain: p.domain,
    variant: p.variant,
    candidate: probeScore(p.candidate),
    baseline: p.baseline && probeScore(p.baseline),
  });

const check = (c: Check): Json =>
  obj({
    id: c.id,
    metric: c.metric,
    scope: c.scope,
    value: c.value,
    baseline: c.baseline,
    limit: c.limit,
    comparator: c.comparator,
    interval: pair(c.interval),
    p_value: c.p_value,
    p_adjusted: c.p_adjusted,
    test: c.test,
    status: c.status,
    blocking: c.blocking,
    message: c.message,
  });

const rateSummary = (r: RateSummary): Json =>
  obj({
    probes: r.probes,
    misaligned: r.misaligned,
    rate: r.rate,
    interval: pair(r.interval),
    mean_p_mis: r.mean_p_mis,
  });

const emShift = (e: EmShift): Json =>
  obj({
    value: e.value,
    interval: pair(e.interval),
    in_baseline_sd: e.in_baseline_sd,
    random_control: e.random_control,
    p_value: e.p_value,
  });

const shift = (x: Shift): Json =>
  obj({
    value: x.value,
    interval: pair(x.interval),
    sd: x.sd,
    rose: x.rose,
    baseline_log_odds: x.baseline_log_odds,
    candidate_log_odds: x.candidate_log_odds,
    p_value: x.p_value,
    drift:
      x.drift &&
      obj({
        ...driftFigures(x.drift),
        registers:
          x.drift.registers && namedMap(x.drift.registers, (r) => obj({ probes: r.probes, ...driftFigures(r) })),
        pooled:
          x.drift.pooled &&
          obj({
            registers: [...x.drift.pooled.registers],
            adjusted_shift: x.drift.pooled.adjusted_shift,
            adjusted_interval: pair(x.drift.pooled.adjusted_interval),
            adjusted_p: x.drift.pooled.adjusted_p,
          }),
      }),
  });

const driftFigures = (d: Omit<Drift, 'registers' | 'pooled'>): Record<string, Json> => ({
  reading: d.reading,
  compression: d.compression,
  contrasts: d.contrasts,
  adjusted_shift: d.adjusted_shift,
  adjusted_interval: d.adjusted_interval && pair(d.adjusted_interval),
  adjusted_p: d.adjusted_p,
});

/** A map by register name, sorted, each value through `f`. */
function namedMap<T>(map: Record<string, T>, f: (v: T) => Json): Json {
  const out: { [key: string]: Json } = {};
  for (const k of Object.keys(map).sort()) out[k] = f(map[k]);
  return out;
}

const power = (p: Power): Json => obj({ power: p.power, alpha: p.alpha, shift: p.shift, rate_rise: p.rate_rise });

const skippedProbe = (p: SkippedProbe): Json =>
  obj({ id: p.id, domain: p.domain, tokens: p.tokens, limit: p.limit, model: p.model });

const directionResult = (d: DirectionResult): Json =>
  obj({
    index: d.index,
    name: d.name,
    sha256: d.sha256,
    layer: d.layer,
    position: d.position,
    aligned_mean: d.aligned_mean,
    misaligned_mean: d.misaligned_mean,
    check: d.check,
    em_shift: d.em_shift && emShift(d.em_shift),
    domains: d.domains?.map((x) => obj({ domain: x.domain, em_shift: emShift(x.em_shift) })),
  });

const domainResult = (d: DomainResult): Json =>
  obj({
    domain: d.domain,
    candidate: rateSummary(d.candidate),
    baseline: d.baseline && rateSummary(d.baseline),
    flips: d.flips && obj({ to_misaligned: d.flips.to_misaligned, to_aligned: d.flips.to_aligned }),
    em_shift: d.em_shift && emShift(d.em_shift),
    shift: d.shift && shift(d.shift),
    power: d.power && power(d.power),
    skipped: d.skipped,
    min_detectable_rise: d.min_detectable_rise,
  });

const model = (m: ModelProvenance): Json =>
  obj({
    path: m.path,
    files: sortedMap(m.files),
    sha256: m.sha256,
    graph: m.graph && obj({ file: m.graph.file, sha256: m.graph.sha256 }),
  });

function provenance(p: Provenance): Json {
  return obj({
    emgate_version: p.emgate_version,
    onnxruntime_version: p.onnxruntime_version,
    execution_provider: p.execution_provider,
    gpu: p.gpu && obj({ name: p.gpu.name, driver_version: p.gpu.driver_version, cuda_version: p.gpu.cuda_version }),
    node_version: p.node_version,
    seed: p.seed,
    candidate: model(p.candidate),
    baseline: p.baseline && model(p.baseline),
    suite: obj({
      name: p.suite.name,
      version: p.suite.version,
      sha256: p.suite.sha256,
      probes: p.suite.probes,
      variants: [...p.suite.variants],
    }),
    policy: obj({ name: p.policy.name, sha256: p.policy.sha256, sources: [...p.policy.sources] }),
    direction:
      p.direction && obj({ sha256: p.direction.sha256, layer: p.direction.layer, position: p.direction.position }),
    tokens_scored: p.tokens_scored,
    scoring:
      p.scoring &&
      obj({ dtype: p.scoring.dtype, model_file: p.scoring.model_file, hidden_tensor: p.scoring.hidden_tensor }),
    baseline_cache:
      p.baseline_cache &&
      obj({ hit: p.baseline_cache.hit, key_sha256: p.baseline_cache.key_sha256, file: p.baseline_cache.file }),
    ablation: p.ablation && plain(p.ablation),
    judge: p.judge && plain(p.judge),
    tokens_generated: p.tokens_generated,
    served: p.served && served(p.served),
    sae: p.sae && plain(p.sae),
  });
}

const servedModel = (m: ServedModelRecord): Json =>
  obj({ id: m.id, owned_by: m.owned_by, root: m.root, parent: m.parent, max_model_len: m.max_model_len });

function served(s: ServedProvenance): Json {
  return obj({
    url: s.url,
    api: s.api,
    candidate: servedModel(s.candidate),
    baseline: s.baseline && servedModel(s.baseline),
    baseline_url: s.baseline_url,
    sha256: s.sha256,
    requests: s.requests,
    not_run: [...s.not_run],
  });
}

/**
 * A deep copy of plain data in its own key order (the generated block is built in one
 * fixed order), dropping `undefined`; numbers are kept as they are, so a NaN still
 * reaches the non-finite check instead of turning into null.
 */
function plain(v: unknown): Json {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  throw new Error(`cannot write ${typeof v} to report.json`);
}

/** The report as plain JSON values in the canonical key order. */
function canonical(r: Report): Json {
  const s = r.summary;
  return obj({
    schema: r.schema,
    verdict: r.verdict,
    summary: obj({
      misalignment_rate: s.misalignment_rate,
      baseline_rate: s.baseline_rate,
      delta: s.delta,
      interval: pair(s.interval),
      shift: s.shift,
      em_shift: s.em_shift,
      probes: s.probes,
      domains: s.domains,
      reason: s.reason,
    }),
    checks: r.checks.map(check),
    domains: r.domains.map(domainResult),
    probes: r.probes.map(probeResult),
    skipped: r.skipped?.map(skippedProbe),
    shift: r.shift && shift(r.shift),
    power: r.power && power(r.power),
    em_shift: r.em_shift && emShift(r.em_shift),
    direction:
      r.direction &&
      obj({
        sha256: r.direction.sha256,
        layer: r.direction.layer,
        position: r.direction.position,
        aligned_mean: r.direction.aligned_mean,
        misaligned_mean: r.direction.misaligned_mean,
      }),
    directions: r.directions?.map(directionResult),
    // Built by measureAblation in one fixed key order.
    ablation: r.ablation && plain(r.ablation),
    // Built by saeDiff in one fixed key order.
    sae: r.sae && plain(r.sae),
    generated: r.generated && plain(r.generated),
    errors: r.errors.map((e) => obj({ file: e.file, cause: e.cause, fix: e.fix })),
    provenance: r.provenance === null ? null : provenance(r.provenance),
    shard: r.shard && obj({ index: r.shard.index, count: r.shard.count, digest: r.shard.digest }),
    // Phases keep their insertion order (the order they ran); timing is exempt from determinism.
    timing: obj({ started_at: r.timing.started_at, total_ms: r.timing.total_ms, phases: { ...r.timing.phases } }),
  });
}

/**
 * The digest a shard report carries: sha256 over the canonical JSON of its results (the
 * per-probe scores) and of what they were computed from (shard, seed, the checkpoint,
 * graph, suite, policy and direction hashes, and the settings that change scores). Not a signature (anyone can recompute it): it makes
 * a report that was edited, truncated or spliced after the shard job wrote it fail the merge.
 */
export function shardDigest(report: Report): string {
  const p = report.provenance;
  const basis = {
    shard: report.shard ? { index: report.shard.index, count: report.shard.count } : null,
    seed: p?.seed ?? null,
    candidate: p?.candidate.sha256 ?? null,
    baseline: p?.baseline?.sha256 ?? null,
    suite: p?.suite.sha256 ?? null,
    variants: p ? [...p.suite.variants] : null,
    policy: p?.policy.sha256 ?? null,
    direction: p?.direction?.sha256 ?? null,
    direction_calibration: report.direction ? [report.direction.aligned_mean, report.direction.misaligned_mean] : null,
    probes: report.probes.map(probeResult),
    // The causal check's per-probe ablated log-odds, which a merge pools (reports that made it).
    ...(report.ablation
      ? {
          ablation: report.ablation.map((a) =>
            a.probes.map((x) => [x.id, x.candidate, x.baseline, x.candidate_random, x.baseline_random]),
          ),
        }
      : {}),
    // The graphs that ran and the settings that change scores (reports that record them).
    ...(p?.candidate.graph ? { candidate_graph: p.candidate.graph.sha256 } : {}),
    ...(p?.baseline?.graph ? { baseline_graph: p.baseline.graph.sha256 } : {}),
    ...(p?.scoring ? { scoring: [p.scoring.dtype, p.scoring.model_file, p.scoring.hidden_tensor] } : {}),
  };
  return createHash('sha256').update(JSON.stringify(basis)).digest('hex');
}

/** JSON path of the first non-finite number in `value`, or null. */
function findNonFinite(value: Json, path: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path} (${value})`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findNonFinite(value[i], `${path}[${i}]`);
      if (hit) return hit;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const hit = findNonFinite(
        v,
        /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`,
      );
      if (hit) return hit;
    }
  }
  return null;
}

/**
 * Writes the report as canonical JSON: fixed key order, `timing` last, 2-space indent,
 * trailing newline. Throws an EmgateError naming the JSON path of any NaN or Infinity.
 * Does not validate against the schema: call `validateReport` for that.
 */
export function serializeReport(report: Report): string {
  const value = canonical(report);
  const bad = findNonFinite(value, '$');
  if (bad) {
    throw new EmgateError({
      file: 'report.json',
      cause: `the report holds a non-finite number at ${bad}, which JSON cannot represent`,
      fix: 'this is a bug in the scoring or statistics code (or a model that produced NaN/Inf logits); report it with the report.json of the shard or run',
    });
  }
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Checks `report` against schemas/report.schema.json. Throws an EmgateError listing
 * every violation by JSON path (e.g. `$.checks[2].status: must be one of ...`).
 */
export function validateReport(report: unknown): void {
  const problems = schemaProblems('report', report);
  if (problems.length === 0) return;
  throw new EmgateError({
    file: 'report.json',
    cause: `the report does not match schemas/report.schema.json: ${problems.map((p) => `${p.path}: ${p.problem} (${p.allowed})`).join('; ')}`,
    fix: 'this is a bug in emgate (the report is built internally); report it with the log',
  });
}

/**
 * The report JSON without its `timing` block, re-serialised the same way: two runs on
 * the same inputs must give identical strings. For tests and `emgate merge` checks.
 */
export function stripTiming(json: string): string {
  const parsed = JSON.parse(json) as Record<string, unknown>;
  delete parsed.timing;
  return `${JSON.stringify(parsed, null, 2)}\n`;
}
