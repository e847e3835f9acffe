// The residual vectors the SAE diff encodes, taken from the scoring pass itself
// (docs/sae.md): at each SAE's layer, every response token's vector (position
// response_mean) or the last prompt token's (last_prompt), of the references or (mode both)
// of the model's own answers. A layer is read once however many SAEs share it.
import { registerTexts } from '../core/contrast';
import type { Position, Probe } from '../core/types';
import type { Engine, ScoredResponse } from './engine';

export interface ResidualKeeper {
  /** Stops keeping (the engine scores as before); call when the pass is done or failed. */
  stop(): void;
  /**
   * The kept vectors by layer, grouped per probe in scoring order (aligned then misaligned
   * references): [tokens, hidden] row-major per reference, or the last prompt token's.
   */
  byProbe(probes: Probe[]): Map<number, Float32Array[][]>;
  /** The kept vectors by layer, in groups of the given sizes (a probe's answers), in scoring order. */
  byGroups(sizes: number[]): Map<number, Float32Array[][]>;
}

/** Keeps, from every reference the engine scores until `stop`, its vectors at `layers`. */
export function keepResiduals(engine: Engine, layers: number[], position: Position): ResidualKeeper {
  const kept = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
  if (position === 'response_mean') engine.responseTokenLayers = new Set(layers);
  engine.onScored = (responses: ScoredResponse[]) => {
    for (const r of responses) {
      for (const layer of layers) {
        const h = r.hidden.get(layer);
        if (!h) throw new Error(`layer ${layer} was not read`);
        const v = position === 'last_prompt' ? h.last_prompt : h.response_tokens;
        if (!v) throw new Error(`layer ${layer}'s response tokens were not kept`);
        kept.get(layer)!.push(v);
      }
    }
  };
  return {
    stop() {
      engine.responseTokenLayers = new Set();
      engine.onScored = null;
    },
    byProbe(probes) {
      const out = new Map<number, Float32Array[][]>();
      for (const [layer, all] of kept) {
        // The scoring pass also scored each probe's register references (after its own); the
        // SAE reads the probe's own references only.
        const total = probes.reduce((n, p) => n + p.aligned.length + p.misaligned.length + registerTexts(p).length, 0);
        if (all.length !== total) throw new Error(`${all.length} references kept at layer ${layer}, ${total} scored`);
        let at = 0;
        out.set(
          layer,
          probes.map((p) => {
            const own = all.slice(at, at + p.aligned.length + p.misaligned.length);
            at += p.aligned.length + p.misaligned.length + registerTexts(p).length;
            return own;
          }),
        );
      }
      return out;
    },
    byGroups(sizes) {
      const total = sizes.reduce((n, k) => n + k, 0);
      const out = new Map<number, Float32Array[][]>();
      for (const [layer, all] of kept) {
        if (all.length !== total) throw new Error(`${all.length} texts kept at layer ${layer}, ${total} scored`);
        let at = 0;
        out.set(
          layer,
          sizes.map((n) => {
            at += n;
            return all.slice(at - n, at);
          }),
        );
      }
      return out;
    },
  };
}
