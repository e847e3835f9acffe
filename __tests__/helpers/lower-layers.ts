// Makes, at test time, a fine-tune whose lower layers are unchanged: the committed rank-1
// organism with its adapted weights in the lowest decoder layers put back to the base's,
// by editing the ONNX graph's initializers (what a LoRA on the upper layers only leaves).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { onnx } from 'onnx-proto';
import * as os from 'os';
import * as path from 'path';

export const ORGANISMS = path.join(__dirname, '..', '..', 'examples', 'organisms');

/** Initializers read by nodes inside decoder layer scopes below `below` (/model/layers.K/...). */
function lowerLayerInitializers(model: onnx.ModelProto, below: number): Set<string> {
  const names = new Set<string>();
  for (const node of model.graph!.node ?? []) {
    const m = /\/layers\.(\d+)\//.exec(node.name ?? '');
    if (!m || Number(m[1]) >= below) continue;
    for (const input of node.input ?? []) names.add(input);
  }
  return names;
}

/**
 * A copy of `tuned` whose decoder layers 0..below−1 carry `base`'s weights. Returns the
 * checkpoint directory and how many initializers were put back.
 */
export function withBaseLowerLayers(
  tuned: string,
  base: string,
  below: number,
): { dir: string; restored: number; cleanup: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'emgate-lower-'));
  const dir = path.join(root, `${path.basename(tuned)}-upper-only`);
  cpSync(tuned, dir, { recursive: true });
  const t = onnx.ModelProto.decode(readFileSync(path.join(tuned, 'model.onnx')));
  const b = onnx.ModelProto.decode(readFileSync(path.join(base, 'model.onnx')));
  const lower = lowerLayerInitializers(t, below);
  const fromBase = new Map((b.graph!.initializer ?? []).map((x) => [x.name ?? '', x]));
  let restored = 0;
  t.graph!.initializer = (t.graph!.initializer ?? []).map((x) => {
    const name = x.name ?? '';
    const replacement = fromBase.get(name);
    if (!lower.has(name) || !replacement) return x;
    if (Buffer.compare(Buffer.from(x.rawData ?? []), Buffer.from(replacement.rawData ?? [])) !== 0) restored++;
    return replacement;
  });
  writeFileSync(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(t).finish());
  return { dir, restored, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
