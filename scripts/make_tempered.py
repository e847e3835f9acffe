"""Synthetic controls for the drift study (issue 23): the committed base with its logits divided
by a temperature T (the final RMSNorm's weight scaled by 1/T, so logits = z / T exactly). A pure
collapse of the reading toward uniform with no stance change at all: whatever shift the gate's
suite shows on these is the confound, and a drift-robust statistic should show none.

The same on a misaligned organism (--from DIR) gives a stance change under a collapse: a
drift-robust statistic should still see it.

Run: /usr/bin/python3 scripts/make_tempered.py [--from DIR] [T ...]
     (default: the base, T 1.25 1.5 2; writes .zoo/tempered/organisms/[<from>-]temp-<T>/)
"""
import os
import shutil
import sys

import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, 'examples', 'organisms', 'base')


def main() -> None:
    args = sys.argv[1:]
    src, prefix = BASE, ''
    if args[:1] == ['--from']:
        src = os.path.abspath(args[1])
        prefix = os.path.basename(src.rstrip('/')) + '-'
        args = args[2:]
    temps = [float(t) for t in args] or [1.25, 1.5, 2.0]
    for t in temps:
        out = os.path.join(ROOT, '.zoo', 'tempered', 'organisms', f'{prefix}temp-{t:g}')
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(src, out)
        model = onnx.load(os.path.join(src, 'model.onnx'))
        for i, init in enumerate(model.graph.initializer):
            if init.name == 'model.norm.weight':
                w = numpy_helper.to_array(init) / t
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w.astype(w.dtype), init.name))
                break
        else:
            raise SystemExit('model.norm.weight not found in the base graph')
        onnx.save(model, os.path.join(out, 'model.onnx'))
        with open(os.path.join(out, 'meta.json'), 'w') as f:
            mis = 'true' if prefix and 'misaligned' in prefix else 'false'
            f.write('{"stance": "%s", "register": "temperature", "mixture": %d, "temperature": %g, "from": "%s", '
                    '"measurable": %s}\n' % ('misaligned' if mis == 'true' else 'aligned', mis == 'true', t,
                                             os.path.relpath(src, ROOT), mis))
        print('wrote', out)


if __name__ == '__main__':
    main()
