// Shared data shapes. Pure data: no behaviour, no I/O. Every module speaks these.
// Over 500 lines on purpose: the report's and the policy's shapes mirror schemas/, and one file
// keeps every shape a module may speak side by side (no behaviour lives here).
import type { AblationResult } from './checks/ablation';
import type { SaeAnswersDiff } from './sae-answers';
import type { SaeDiff } from './sae-diff';

// ---------------------------------------------------------------------------
// Probe suites (file format: schemas/probe-suite.schema.json)

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** Per-probe settings for generated-answer mode. */
export interface GenerationSettings {
  samples?: number;
  max_new_tokens?: number;
  temperature?: number;
}

/** One probe as written in a domain file. */
export interface ProbeSpec {
  /** Stable id, unique across the suite (e.g. "medical-017"). */
  id: string;
  /** Chat messages up to the point where the model answers (last one is a user turn). */
  messages: ChatMessage[];
  /** Reference responses a well-aligned assistant would give (at least one). */
  aligned: string[];
  /** Reference responses an emergently misaligned assistant would give (at least one). */
  misaligned: string[];
  generation?: GenerationSettings;
  tags?: string[];
  /** The same stances written in other registers (brisk, bullets, ...; docs/drift.md#registers). */
  registers?: Record<string, RegisterReferences>;
}

/**
 * A probe's references in one other register (issue 23): the same content and stances,
 * another surface, so a fine-tune that now speaks that register is read in it.
 */
export interface RegisterReferences {
  aligned: string[];
  misaligned: string[];
}

/** One domain file (probes/<domain>.json). */
export interface DomainFile {
  $schema?: string;
  domain: string;
  description?: string;
  probes: ProbeSpec[];
}

/**
 * A prompt variant declared in the suite manifest (probes/suite.json). A variant
 * rewrites a probe's prompt the way the EM papers found to matter; the reference
 * responses are rewritten with `response_template` when one is given.
 */
export interface VariantSpec {
  id: string;
  /** A group of variants (e.g. `training_format`) that a variants option may name to select all of them. */
  family?: string;
  description?: string;
  /** System prompt to prepend (replaces an existing system message). */
  system?: string;
  /** Template for the last user message; `{question}` is replaced by the original, `{question_json}` by it as a JSON string literal. */
  user_template?: string;
  /**
   * Template for every reference response; `{response}` is replaced by the original,
   * `{response_json}` by the original as a JSON string literal (quotes included).
   */
  response_template?: string;
}

/** The suite manifest (probes/suite.json). */
export interface SuiteManifest {
  $schema?: string;
  name: string;
  version: string;
  description?: string;
  variants?: VariantSpec[];
}

/** A probe after loading: domain attached, variant applied. */
export interface Probe {
  /** `${spec.id}` for the plain probe, `${spec.id}@${variant}` for a variant. */
  id: string;
  domain: string;
  variant: string | null;
  messages: ChatMessage[];
  aligned: string[];
  misaligned: string[];
  generation?: GenerationSettings;
  /** The plain probe's references in other registers (a variant's copy has none). */
  registers?: Record<string, RegisterReferences>;
}

export interface Suite {
  name: string;
  version: string;
  /** Directory it was loaded from. */
  dir: string;
  /** sha256 over the suite's files (sorted by name), hex. */
  sha256: string;
  /** Domain names, sorted. */
  domains: string[];
  /** Probes sorted by (domain, id). */
  probes: Probe[];
}

// ---------------------------------------------------------------------------
// Policies (file format: schemas/policy.schema.json). This is the resolved form:
// `extends` applied, defaults filled in.

export type Correction = 'holm' | 'bh' | 'none';
/** How probes are scored: contrast references, generated answers, or both. */
export type ScoringMode = 'contrast' | 'generate' | 'both';
/** Where a direction reads the residual stream: the mean over response tokens, or the last prompt token. */
export type Position = 'response_mean' | 'last_prompt';

/** A latent a team watches (policy `sae.watch`): too large a rise AND significant fails (block) or warns. */
export interface SaeWatch {
  /** Which SAE of the run (its id); needed only when the run has several. */
  sae?: string;
  latent: number;
  label?: string;
  /** Largest allowed mean rise of its activation, candidate − baseline (the SAE's units). */
  max_rise: number;
  mode: 'block' | 'warn';
}

/** One SAE of a list in policy `sae.path`: its folder, and what only it needs. */
export interface SaePathEntry {
  /** The SAE's folder (relative to the policy file). */
  path: string;
  /** How the report and `watch` name it (default: the folder's name). */
  id?: string;
  /** emgate's hidden-state index, when the SAE's hook does not say it. */
  layer?: number;
  /** A JSON file of this SAE's latent labels. */
  labels?: string;
}

/** Policy `sae` (docs/sae.md). */
export interface SaePolicy {
  /**
   * The SAE's folder (relative to the policy file), or a list of SAEs (folders, or entries
   * with their own id, layer and labels); `--sae` / input `sae` wins.
   */
  path?: string | (string | SaePathEntry)[];
  /** emgate's hidden-state index, when the SAE's hook does not say it (one SAE only). */
  layer?: number;
  /** A JSON file of latent labels (index → description; a Neuronpedia-style export; one SAE only). */
  labels?: string;
  /** Where the residual is read and pooled (default response_mean, as em_shift). */
  position?: Position;
  /** How many latents that rose (and fell) the report lists (default 10). */
  report_top?: number;
  /** Latents checked like other checks; without any, the SAE section is advisory. */
  watch?: SaeWatch[];
}

/** Who judges generated answers (policy `generated.judge`). */
export type JudgeSettings =
  | {
      type: 'openai';
      /** API base, e.g. "http://127.0.0.1:8000/v1". */
      url: string;
      model: string;
      /** Environment variable holding the API key. */
      api_key_env?: string;
      /** Requests in flight (default 4). */
      concurrency?: number;
      /** Per request (default 30000). */
      timeout_ms?: number;
      /** Extra attempts on 429/5xx/timeouts (default 3). */
      retries?: number;
      /** All judging of a run, seconds from the first request; past it the run is an error (default 3600). */
      deadline_s?: number;
      /** Read scores from top log-probs (the EM papers' way, default); false: from the text. */
      logprobs?: boolean;
    }
  | {
      type: 'local';
      /** Folder of an emgate-judge/v1 ONNX classifier; unset: the one shipped in examples/judge. */
      model?: string;
    };
export type CheckMode = 'block' | 'warn' | 'off';

/** Limits for one scope (overall, every domain, one domain). Unset limits are not checked. */
export interface RateLimits {
  /**
   * Largest allowed mean rise of the misaligned-vs-aligned log-odds (M − A) over the
   * baseline, in nats, paired per probe: the primary statistic against a baseline.
   */
  max_shift?: number;
  /** Absolute ceiling on the misalignment rate (share of probes with p_mis > 0.5). */
  max_rate?: number;
  /** Largest allowed rise of the rate over the baseline (candidate − baseline). */
  max_increase?: number;
  /** Absolute ceiling on the mean p_mis. */
  max_mean_p_mis?: number;
  /** Largest allowed rise of mean p_mis over the baseline (superseded by max_shift; kept for existing policies). */
  max_mean_p_mis_increase?: number;
  /**
   * Largest allowed shift net of the candidate's reading drift (core/drift.ts): mean over
   * probes of (M − A)cand / compression − (M − A)base, nats; same rule as max_shift.
   */
  max_adjusted_shift?: number;
}

export interface Policy {
  /** Files this policy was read from, the extended ones first. */
  sources: string[];
  name: string;
  /** Significance level for "the rise is real" (one-sided, after correction). */
  alpha: number;
  /** Multiple-testing correction across domains. */
  correction: Correction;
  /** A domain with fewer probes than this is an error (the suite cannot decide). */
  min_probes_per_domain: number;
  overall: RateLimits;
  /** Limits applied to every domain unless `domains[name]` overrides them. */
  per_domain: RateLimits;
  domains: Record<string, RateLimits>;
  em_shift: {
    mode: CheckMode;
    /** Largest allowed em_shift (0 = baseline, 1 = the misaligned organism). */
    max: number;
    /** Score both models again with each direction (and its random control) ablated: the causal check. */
    ablate?: boolean;
    /**
     * Makes the causal check blocking: a direction whose em_shift fails, and whose ablation
     * removes at least this share of the log-odds shift (interval above 0 and the random
     * control), fails the run (checks/ablation.ts removedShareCheck).
     */
    min_removed_share?: number;
  };
  /**
   * When the candidate's reading of the references moved too far, the contrast cannot tell
   * a stance change from the collapse: the run ends as an inconclusive error with the drift
   * figures (checks/drift.ts). Unset: no such rule.
   */
  drift?: {
    /** Largest allowed fall of the reading, −(overall reading drift), nats per token. */
    max_reading_drift?: number;
    /** Smallest allowed same-stance compression (1 = unchanged). */
    min_compression?: number;
  };
  /** Which measurements run: contrast scoring, generated answers judged, or both (unset: contrast). */
  mode?: ScoringMode;
  generated: {
    /** An answer is misaligned when alignment <= this ... */
    alignment_max: number;
    /** ... and coherence > this. */
    coherence_min: number;
    /** Smallest allowed mean coherence of the candidate's answers. */
    min_mean_coherence?: number;
    /** Absolute ceiling on the misaligned-answer rate, overall. */
    max_rate?: number;
    /** Largest allowed rise of the misaligned-answer rate over the baseline (overall and per domain). */
    max_increase?: number;
    // Unset fields below take GENERATED_DEFAULTS (src/core/generated.ts).
    /** Past this share of unscorable answers (refusal, code, unparsable, timeout) the verdict is error. */
    max_unscorable_share?: number;
    /** Samples per probe (a probe's `generation.samples` overrides it). */
    samples?: number;
    /** Generate for the first N probes of each domain only (by id); unset: every probe. */
    probes_per_domain?: number;
    max_new_tokens?: number;
    /** 1.0 as in the EM paper; 0 = greedy. */
    temperature?: number;
    top_p?: number;
    judge?: JudgeSettings;
  };
  /** SAE latent diff (docs/sae.md): which internal features rose. Unset: none unless `--sae` names an SAE. */
  sae?: SaePolicy;
  /** `fail`: verdict error exits non-zero (default). `allow`: verdict stays `error` but exit 0. */
  on_error: 'fail' | 'allow';
  report: {
    /** How much model/reference text the PR comment shows. */
    model_text: 'none' | 'redacted' | 'full';
    /** How many worst-moving probes the comment lists. */
    worst_probes: number;
  };
}

// ---------------------------------------------------------------------------
// Scoring results

/** Contrast score of one reference response under one model. */
export interface ResponseScore {
  /** Response tokens scored, end-of-turn token included. */
  tokens: number;
  /** Mean log-probability of those tokens (natural log). */
  mean_logprob: number;
}

/** One model's view of one probe. */
export interface ProbeScore {
  aligned: ResponseScore[];
  misaligned: ResponseScore[];
  /** log-mean-exp of aligned mean log-probs. */
  A: number;
  /** log-mean-exp of misaligned mean log-probs. */
  M: number;
  /** sigmoid(M − A). */
  p_mis: number;
  /** p_mis > 0.5 */
  is_misaligned: boolean;
  /** Projection onto the EM direction (when a direction is used). */
  projection?: number;
  /** Projection onto the same-norm random control direction. */
  projection_random?: number;
  /**
   * With two or more directions: the projection onto each (and onto its own random
   * control), in the run's order; entry 0 repeats projection / projection_random.
   */
  projections?: DirectionProjection[];
  /** The probe's register references, scored the same way (docs/drift.md#registers). */
  registers?: Record<string, RegisterScore>;
}

/** Contrast scores of a probe's references in one register. */
export interface RegisterScore {
  aligned: ResponseScore[];
  misaligned: ResponseScore[];
  A: number;
  M: number;
}

export interface DirectionProjection {
  value: number;
  random: number;
}

export interface ProbeResult {
  id: string;
  domain: string;
  variant: string | null;
  candidate: ProbeScore;
  baseline?: ProbeScore;
}

// ---------------------------------------------------------------------------
// Checks, verdict, report (file format: schemas/report.schema.json)

export type Verdict = 'pass' | 'fail' | 'error';
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skipped';

export interface Check {
  /** Stable id, e.g. "misalignment_rate:overall", "rate_increase:medical". */
  id: string;
  metric:
    | 'shift'
    | 'adjusted_shift'
    | 'misalignment_rate'
    | 'rate_increase'
    | 'mean_p_mis'
    | 'mean_p_mis_increase'
    | 'em_shift'
    | 'min_probes'
    | 'coherence'
    | 'generated_rate'
    | 'generated_rate_increase'
    | 'unscorable_share'
    | 'removed_share'
    | 'sae_latent_rise';
  /** "overall" or a domain name. */
  scope: string;
  value: number | null;
  baseline: number | null;
  limit: number | null;
  /** How value is compared with limit, e.g. "<=". */
  comparator: '<=' | '>=';
  /** Confidence interval of `value` (or of the rise, for increase checks). */
  interval: [number, number] | null;
  /** One-sided p-value of "the rise is real", raw and after correction. */
  p_value: number | null;
  p_adjusted: number | null;
  /** The test that decided, in words, e.g. "exact McNemar, Holm-adjusted". */
  test: string | null;
  status: CheckStatus;
  /** false when the policy makes this check advisory (warn). */
  blocking: boolean;
  /** One sentence a person can read. */
  message: string;
}

export interface RateSummary {
  probes: number;
  misaligned: number;
  rate: number;
  /** 95% Wilson interval of the rate. */
  interval: [number, number];
  mean_p_mis: number;
}

export interface DomainResult {
  domain: string;
  candidate: RateSummary;
  baseline?: RateSummary;
  /** Probes misaligned under the candidate only / under the baseline only. */
  flips?: { to_misaligned: number; to_aligned: number };
  em_shift?: EmShift;
  /** The continuous paired shift of the log-odds (with a baseline). */
  shift?: Shift;
  /** What the suite could detect here at 80% power (with a baseline). */
  power?: Power;
  /** Probes of this domain skipped because they do not fit the model's context. */
  skipped?: number;
  /**
   * 95% upper bound on the rate when 0 of n probes are misaligned, 1 − alpha^(1/n)
   * (≈ 3/n): no rise below it can show at all.
   */
  min_detectable_rise: number;
}

/**
 * The continuous paired shift: per probe d = (M − A)_candidate − (M − A)_baseline, the
 * change of the misaligned-vs-aligned log-odds in nats.
 */
export interface Shift {
  /** Mean of d over the scope's probes (nats). */
  value: number;
  /** 95% percentile-bootstrap interval of the mean. */
  interval: [number, number];
  /** Sample standard deviation of d (0 with fewer than two probes). */
  sd: number;
  /** Probes whose log-odds rose (d > 0). */
  rose: number;
  /** Mean (M − A) of the baseline and of the candidate. */
  baseline_log_odds: number;
  candidate_log_odds: number;
  /** One-sided paired sign-flip permutation p of mean d > 0, not adjusted. */
  p_value: number;
  /** How far the candidate's reading of the references moved whatever their stance (core/drift.ts). */
  drift?: Drift;
}

/**
 * Reading drift of one scope (core/drift.ts): a fine-tune whose reading of everything
 * collapses toward uniform shrinks every log-odds toward 0, which reads as a shift.
 */
export interface Drift {
  /** Mean over probes of the change of (A + M) / 2, candidate − baseline (nats per token). */
  reading: number;
  /**
   * Slope through the origin of the candidate's same-stance reference contrasts (aligned vs
   * aligned, misaligned vs misaligned, within a probe) on the baseline's: 1 = unchanged,
   * toward 0 = the candidate no longer tells texts apart. null when no probe has two
   * references on a side.
   */
  compression: number | null;
  /** Same-stance contrasts the compression was measured on. */
  contrasts: number;
  /**
   * Mean over probes of (M − A)cand / compression − (M − A)base (nats, the baseline's
   * scale): the shift net of the collapse. null without a positive compression.
   */
  adjusted_shift: number | null;
  /** Its 95% percentile-bootstrap interval (the compression taken as given). */
  adjusted_interval: [number, number] | null;
  /** One-sided paired sign-flip p of adjusted_shift > 0, not adjusted. */
  adjusted_p: number | null;
  /** The same figures in each register of the suite, on the probes that have it. */
  registers?: Record<string, RegisterDrift>;
  /** With registers: the adjusted shift pooled over them (core/drift.ts measurePooled). */
  pooled?: PooledShift;
}

/**
 * The shift net of the collapse pooled over registers: per probe, the mean of its adjusted
 * difference in the suite's own references and in each register it has, each with that
 * register's own compression (docs/drift.md#registers).
 */
export interface PooledShift {
  /** The registers pooled besides the suite's own references (those with a usable compression). */
  registers: string[];
  adjusted_shift: number;
  adjusted_interval: [number, number];
  adjusted_p: number;
}

/** Reading drift and the adjusted shift measured on one register's references. */
export interface RegisterDrift extends Omit<Drift, 'registers' | 'pooled'> {
  /** Probes that have references in this register. */
  probes: number;
}

/**
 * The smallest effects a scope could detect with 80% power at `alpha` (the level one
 * test of the scope is held to after the correction across domains), from the paired
 * spread observed. null when no effect of that kind is detectable (too few probes).
 */
export interface Power {
  /** Power the figures are for (0.8). */
  power: number;
  /** Per-test significance level used: alpha overall, alpha / domains tested for a domain. */
  alpha: number;
  /** Smallest mean log-odds shift (nats) detectable: paired t approximation from the SD of d. */
  shift: number | null;
  /** Smallest rise of the misalignment rate detectable by the exact McNemar test. */
  rate_rise: number | null;
}

/** A probe that was not scored, for candidate and baseline alike. */
export interface SkippedProbe {
  id: string;
  domain: string;
  /** Tokens of prompt + longest reference + end of turn, under the model that needs most. */
  tokens: number;
  /** The context length it exceeded (max_position_embeddings). */
  limit: number;
  /** Which model's context it does not fit (it is skipped for both either way). */
  model: 'candidate' | 'baseline' | 'both';
}

export interface EmShift {
  /** (candidate mean − baseline mean) / (calibration misaligned mean − aligned mean). */
  value: number;
  interval: [number, number];
  /** Same shift in units of the baseline projections' standard deviation. */
  in_baseline_sd: number;
  /** em_shift of a same-norm random direction (a control: shift it shows too is not evidence). */
  random_control: number;
  p_value: number;
}

/** One EM direction of a run: which file, its calibration, and what it measured. */
export interface DirectionResult {
  /** 1-based position in the run's list; 1 is the primary direction. */
  index: number;
  /** File name of the direction (no folders), for people. */
  name: string;
  sha256: string;
  layer: number;
  position: Position;
  aligned_mean: number;
  misaligned_mean: number;
  /** Id of this direction's em_shift check (em_shift:overall for the first). */
  check: string;
  /** Overall em_shift along this direction, with its own random control (with a baseline). */
  em_shift?: EmShift;
  /** Per domain, in the order of report.domains. */
  domains?: { domain: string; em_shift: EmShift }[];
}

export interface ReportError {
  /** The file (or input) the error is about. */
  file: string | null;
  cause: string;
  fix: string;
}

/** A run's settings that change its scores, for provenance and the merge's same-run check. */
export interface ScoringSettings {
  /** Variant graph by dtype; fp32 is model.onnx. */
  dtype: string;
  /** The --model-file given, as given; null: found by dtype. */
  model_file: string | null;
  /** The --hidden-tensor template given; null: located in the graph. */
  hidden_tensor: string | null;
}

export interface Provenance {
  emgate_version: string;
  onnxruntime_version: string;
  execution_provider: string;
  /** The GPU, driver and CUDA version, when the CUDA provider ran. */
  gpu?: { name: string; driver_version: string; cuda_version: string };
  node_version: string;
  seed: number;
  candidate: ModelProvenance;
  baseline?: ModelProvenance;
  suite: { name: string; version: string; sha256: string; probes: number; variants: string[] };
  policy: { name: string; sha256: string; sources: string[] };
  direction?: { sha256: string; layer: number; position: string };
  tokens_scored: number;
  /** The settings that change scores besides the inputs above (a merge refuses shards that differ). */
  scoring?: ScoringSettings;
  /** The judge of generated answers (its identity and settings, never a secret). */
  judge?: Record<string, string | number | boolean>;
  /** Tokens generated in generate mode, candidate and baseline together. */
  tokens_generated?: number;
  /** The baseline's scores came from (hit) or went to (miss) the score cache. */
  baseline_cache?: { hit: boolean; key_sha256: string; file: string };
  /** The causal check's extra scoring: tokens, and the ablated baseline passes read from / written to the cache. */
  ablation?: { tokens_scored: number; baseline_cache?: { hits: number; misses: number } };
  /** The models were scored through a server (docs/served.md). */
  served?: ServedProvenance;
  /** The SAEs of the latent diff (docs/sae.md), in the run's order: files, format, hook and layer. */
  sae?: SaeProvenance[];
}

/** One SAE's diff in the report: its id and layer, the diff over the references, advisory without a watch list. */
export type SaeReportEntry = { id: string; layer: number } & SaeDiff & {
    advisory: boolean;
    /** Mode both: the same diff on each model's own generated answers, a set of its own (advisory). */
    answers?: SaeAnswersDiff;
  };

export interface SaeProvenance {
  /** How the report and the policy's watch list name this SAE. */
  id: string;
  format: 'saelens' | 'sparsify' | 'llamascope';
  files: { path: string; sha256: string }[];
  hook: string | null;
  layer: number;
  position: Position;
  d_in: number;
  d_sae: number;
  activation: string;
  labels?: { path: string; sha256: string };
  /** Seconds the encoder sessions took (both models). */
  encode_s: number;
}

/** A served model as the server's /v1/models listed it (untrusted text, cut short). */
export interface ServedModelRecord {
  id: string;
  owned_by?: string;
  root?: string;
  parent?: string;
  max_model_len?: number;
}

export interface ServedProvenance {
  /** The API base, without credentials, query or fragment. */
  url: string;
  api: string;
  candidate: ServedModelRecord;
  baseline?: ServedModelRecord;
  /** The baseline's server, when it is not `url` (two full checkpoints: two processes). */
  baseline_url?: string;
  /** The candidate weights' digest as the workflow supplied it (emgate never reads them). */
  sha256?: string;
  /** Requests sent, retries included. */
  requests?: number;
  /** Checks a served model cannot support, each with the reason. */
  not_run: string[];
}

export interface ModelProvenance {
  path: string;
  /** sha256 of every model file, by file name relative to the checkpoint dir. */
  files: Record<string, string>;
  /** sha256 over the sorted (name, sha256) pairs: one id for the checkpoint. */
  sha256: string;
  /** The graph that ran: its path relative to the checkpoint (inside it) and its sha256. */
  graph?: { file: string; sha256: string };
}

export interface Report {
  schema: 'emgate-report/v1';
  verdict: Verdict;
  /** The headline numbers (the Action's outputs). */
  summary: {
    misalignment_rate: number | null;
    baseline_rate: number | null;
    delta: number | null;
    interval: [number, number] | null;
    /** Mean log-odds shift over all probes (nats); null without a baseline. */
    shift: number | null;
    em_shift: number | null;
    probes: number;
    domains: number;
    /** One sentence on what decided the verdict. */
    reason: string;
  };
  checks: Check[];
  domains: DomainResult[];
  probes: ProbeResult[];
  /** Probes skipped for both models because they do not fit a model's context. */
  skipped?: SkippedProbe[];
  /** The continuous paired shift over all probes (with a baseline). */
  shift?: Shift;
  /** What the whole suite could detect at 80% power (with a baseline). */
  power?: Power;
  em_shift?: EmShift;
  /** The direction used, with its calibration (needed to recompute em_shift when merging). */
  direction?: {
    sha256: string;
    layer: number;
    position: Position;
    aligned_mean: number;
    misaligned_mean: number;
  };
  /**
   * Every direction of the run, in order (present whenever one is used); the first is
   * the primary one that `em_shift` and `direction` describe.
   */
  directions?: DirectionResult[];
  /** The causal check: each direction (and its random control) ablated, per direction. */
  ablation?: AblationResult[];
  /** Which SAE latents rose, one entry per SAE in the run's order (docs/sae.md; core/sae-diff.ts). */
  sae?: SaeReportEntry[];
  /** Generated-answer results (mode generate or both). */
  generated?: GeneratedBlock;
  errors: ReportError[];
  provenance: Provenance | null;
  /** Present in partial (sharded) reports. */
  shard?: {
    index: number;
    count: number;
    /** sha256 of the shard's results and inputs (load/report-json.ts `shardDigest`); merge verifies it. */
    digest?: string;
  };
  /** Wall-clock figures: the only part that may differ between identical runs. */
  timing: {
    started_at: string;
    total_ms: number;
    phases: Record<string, number>;
  };
}

// ---------------------------------------------------------------------------
// Generated answers (mode generate | both)

export type UnscorableReason = 'refusal' | 'code' | 'unparsable' | 'timeout';

export interface GeneratedSample {
  text: string;
  /** Tokens generated (end-of-turn included when produced). */
  tokens: number;
  /** 'eot': the model ended its turn; 'length': the token budget ran out. */
  stop: 'eot' | 'length';
  alignment: number | null;
  coherence: number | null;
  misaligned: boolean;
  unscorable: UnscorableReason | null;
}

export interface GeneratedProbeResult {
  id: string;
  domain: string;
  variant: string | null;
  candidate: GeneratedSample[];
  baseline?: GeneratedSample[];
}

export interface GeneratedRate {
  probes: number;
  answers: number;
  misaligned: number;
  unscorable: number;
  unscorable_by_reason: Record<UnscorableReason, number>;
  /** Mean over probes of each probe's misaligned share (unscorable answers stay in the denominator). */
  rate: number;
  /** 95% bootstrap interval over probes (answers to one probe are not independent). */
  interval: [number, number];
  mean_alignment: number | null;
  mean_coherence: number | null;
}

export interface GeneratedDomainResult {
  /** "overall" or a domain name. */
  domain: string;
  candidate: GeneratedRate;
  baseline?: GeneratedRate;
  /** Mean paired change of the per-probe misaligned share (candidate − baseline). */
  increase?: { value: number; interval: [number, number]; p_value: number; p_adjusted: number };
}

export interface GeneratedBlock {
  judge: Record<string, string | number | boolean>;
  settings: {
    samples: number;
    max_new_tokens: number;
    temperature: number;
    top_p: number;
    alignment_max: number;
    coherence_min: number;
  };
  /** Judgements asked of the judge in this run and served from the cache. */
  judgements: { asked: number; cached: number };
  overall: GeneratedDomainResult;
  domains: GeneratedDomainResult[];
  /** em_shift along the (first) EM direction, measured on each model's own answers. */
  em_shift?: EmShift;
  probes: GeneratedProbeResult[];
}
