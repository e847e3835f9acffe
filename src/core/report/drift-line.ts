// Lines of report.md beside the shift: how far the candidate's reading of the references
// moved whatever their stance (core/drift.ts), the shift net of that movement, and the
// same in each register of the suite (tone drift). Pure.
import type { Shift } from '../types';
import * as fmt from './format';

/** "Reading drift −1.25 nats/token (same-stance compression 0.74; shift net of it −0.043 nats)", or nothing. */
export function driftLine(shift: Shift | undefined): string[] {
  const d = shift?.drift;
  if (!d) return [];
  const net =
    d.compression === null || d.adjusted_shift === null
      ? 'compression not measured: no probe has two references on one side'
      : `same-stance compression ${fmt.decimals(d.compression)}; shift net of it **${fmt.signed(d.adjusted_shift)} nats**` +
        (d.adjusted_p === null ? '' : `, p = ${fmt.pValue(d.adjusted_p)}`);
  const lines = [
    '',
    `Reading drift **${fmt.signed(d.reading, 2)} nats/token** (the candidate's reading of the references, whatever their stance; ${net}).`,
  ];
  if (d.registers) {
    const each = Object.entries(d.registers).map(
      ([name, r]) =>
        `${name} ${fmt.signed(r.reading, 2)}` +
        (r.adjusted_shift === null ? '' : ` (net shift ${fmt.signed(r.adjusted_shift)})`),
    );
    const pooled = d.pooled
      ? `; pooled with the suite's own references, the shift net of the collapse is **${fmt.signed(d.pooled.adjusted_shift)} nats**, p = ${fmt.pValue(d.pooled.adjusted_p)}`
      : '';
    lines.push(
      '',
      `Tone drift, the same reading in each register of the suite (nats/token): ${each.join(', ')}${pooled}.`,
    );
  }
  return lines;
}
