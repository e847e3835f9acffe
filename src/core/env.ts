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
