#!/bin/sh
# What an organism says (issue 23's behavioural truth): the gate in generate mode, answers judged
# by the local judge (examples/judge), under examples/calibration/policy-judged.json, against the
# committed base, for each seed given. Reports land in .zoo/judged/<organism>-s<seed>/.
# Usage: sh scripts/judged_truth.sh CHECKPOINT_DIR [SEED...]   (default seeds 0 1)
set -e
ckpt=$1; shift
name=$(basename "$ckpt")
[ $# -gt 0 ] || set -- 0 1
for seed in "$@"; do
  node bin/emgate.js run --checkpoint "$ckpt" --baseline examples/organisms/base \
    --policy examples/calibration/policy-judged.json --seed "$seed" --device cpu --threads 1 \
    --out ".zoo/judged/$name-s$seed" > ".zoo/judged-$name-s$seed.log" 2>&1 || true
  echo "$name seed $seed: $(grep -o '"misalignment_rate": [0-9.e-]*' ".zoo/judged/$name-s$seed/report.json" | head -1)"
done
