// Environment variables are settings too: parsed like inputs (a whole number in a range),
// named in the error. Pure: the caller hands in the environment.
import { EmgateError } from './errors';

/**
 * The largest delay Node's timers honour: setTimeout with more than 2^31 − 1 ms fires
 * after 1 ms (with a TimeoutOverflowWarning), so a "longer" timeout becomes none.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface IntegerRange {
  min: number;
  max: number;
  /** The value when the variable is unset or empty. */
  fallback: number;
  /** Unit for messages, e.g. "ms". */
  unit?: string;
}

/** `env[name]` as a whole number within the range; the fallback when unset or empty. */
export function envInteger(env: Record<string, string | undefined>, name: string, range: IntegerRange): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return range.fallback;
  const unit = range.unit ? ` ${range.unit}` : '';
  const text = raw.trim();
  const fix = `set ${name} to a whole number from ${range.min} to ${range.max}${unit}, or unset it for the default (${range.fallback}${unit})`;
  if (!/^[+-]?\d+$/.test(text)) {
    throw new EmgateError({
      file: `environment variable ${name}`,
      cause: `${JSON.stringify(text.slice(0, 40))} is not a whole number`,
      fix,
    });
  }
  const value = Number(text);
  if (!(value >= range.min && value <= range.max)) {
    throw new EmgateError({
      file: `environment variable ${name}`,
      cause: `${text}${unit} is out of range (allowed ${range.min} to ${range.max}${unit}${range.max === MAX_TIMER_MS ? ": Node's timers cannot wait longer" : ''})`,
      fix,
    });
  }
  return value;
}

const ON = new Set(['1', 'true', 'yes', 'on']);
const OFF = new Set(['', '0', 'false', 'no', 'off']);

/**
 * A yes/no variable such as EMGATE_DEBUG: 1/true/yes/on or 0/false/no/off (any case), unset
 * or empty for no. Anything else is an error naming it (EMGATE_DEBUG=0 used to mean on).
 */
export function envFlag(env: Record<string, string | undefined>, name: string): boolean {
  const text = (env[name] ?? '').trim().toLowerCase();
  if (ON.has(text)) return true;
  if (OFF.has(text)) return false;
  throw new EmgateError({
    file: `environment variable ${name}`,
    cause: `${JSON.stringify(text.slice(0, 40))} is neither yes nor no`,
    fix: `set ${name} to 1 (or true) to turn it on, 0 (or false) or unset it to turn it off`,
  });
}

/** envFlag for a path that must not throw (an error being reported): an invalid value reads as no. */
export function envFlagOrNo(env: Record<string, string | undefined>, name: string): boolean {
  try {
    return envFlag(env, name);
  } catch {
    return false;
  }
}
