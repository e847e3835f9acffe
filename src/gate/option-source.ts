// Where option values come from and the generic parsers over them, for settings.ts's option
// table: a value left empty ('') is "not given"; a value outside an option's allowed set is
// an error naming the option as the user wrote it (`--batch-size`, `input 'batch-size'`),
// the value and what is allowed.
import { EmgateError } from '../core/errors';

/** Where raw option values come from, and how the user names an option. */
export interface OptionSource {
  /** The raw text of an option, undefined when not given ('' counts as not given). */
  get(name: string): string | undefined;
  /** The option as the user wrote it, for messages: `--batch-size` or `input 'batch-size'`. */
  label(name: string): string;
}

/** Options whose command-line flag is not the Action input's name. */
const CLI_FLAGS: Record<string, string> = { 'out-dir': 'out', 'served-url': 'served' };

/** Options parsed by node's util.parseArgs: strings, and `true` for boolean flags. */
export function cliSource(values: Record<string, string | boolean | string[] | undefined>): OptionSource {
  return {
    get: (name) => {
      const v = values[CLI_FLAGS[name] ?? name];
      if (v === true) return 'true';
      // A repeated option (--direction A --direction B) reads as one value per line, as the
      // Action's multi-line inputs do.
      if (Array.isArray(v)) return v.filter((x) => x !== '').join('\n') || undefined;
      return typeof v === 'string' && v !== '' ? v : undefined;
    },
    label: (name) => `--${CLI_FLAGS[name] ?? name}`,
  };
}

/** Action inputs, read by `read` (core.getInput in the Action, a map in tests). */
export function actionSource(read: (name: string) => string): OptionSource {
  return {
    get: (name) => {
      const v = read(name);
      return v === '' ? undefined : v;
    },
    label: (name) => `input '${name}'`,
  };
}

export function optionError(src: OptionSource, name: string, cause: string, fix: string): EmgateError {
  return new EmgateError({ file: src.label(name), cause, fix });
}

export function text(src: OptionSource, name: string): string | undefined {
  return src.get(name);
}

export function oneOf<T extends string>(src: OptionSource, name: string, allowed: readonly T[], dflt: T): T {
  const v = src.get(name);
  if (v === undefined) return dflt;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw optionError(src, name, `unknown value '${v}'`, `use one of: ${allowed.join(', ')} (default: ${dflt})`);
}

export function bool(src: OptionSource, name: string, dflt: boolean): boolean {
  const v = src.get(name);
  if (v === undefined) return dflt;
  // YAML 1.2 core schema, like core.getBooleanInput (which refuses '' instead of defaulting).
  if (['true', 'True', 'TRUE'].includes(v)) return true;
  if (['false', 'False', 'FALSE'].includes(v)) return false;
  throw optionError(src, name, `'${v}' is not a boolean`, `use true or false (default: ${dflt})`);
}

export function int(src: OptionSource, name: string, dflt: number, min: number, max: number): number;
export function int(
  src: OptionSource,
  name: string,
  dflt: number | undefined,
  min: number,
  max: number,
): number | undefined;
export function int(
  src: OptionSource,
  name: string,
  dflt: number | undefined,
  min: number,
  max: number,
): number | undefined {
  const v = src.get(name);
  if (v === undefined) return dflt;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw optionError(
      src,
      name,
      `'${v}' is not a whole number from ${min} to ${max}`,
      `write a number like ${dflt ?? min}`,
    );
  }
  return n;
}
