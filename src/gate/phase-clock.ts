// Wall-clock phases for the report's timing block (the only non-deterministic part).
import type { Report } from '../core/types';

export class PhaseClock {
  private readonly start = Date.now();
  private readonly startedAt = new Date(this.start).toISOString();
  private readonly phases: Record<string, number> = {};

  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.phases[phase] = Date.now() - t0;
    }
  }

  timeSync<T>(phase: string, fn: () => T): T {
    const t0 = Date.now();
    try {
      return fn();
    } finally {
      this.phases[phase] = Date.now() - t0;
    }
  }

  summary(): Report['timing'] {
    return { started_at: this.startedAt, total_ms: Date.now() - this.start, phases: { ...this.phases } };
  }
}
