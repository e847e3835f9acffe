// One line of report.md beside the shift: how far the candidate's reading of the references
// moved whatever their stance (core/drift.ts), and the shift net of that movement. Pure.
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
  return [
    '',
    `Reading drift **${fmt.signed(d.reading, 2)} nats/token** (the candidate's reading of the references, whatever their stance; ${net}).`,
  ];
}
