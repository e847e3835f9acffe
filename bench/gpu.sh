#!/usr/bin/env bash
# One call on a GPU machine (a few minutes): builds the vocab-128k benchmark checkpoint if it
# is not cached, runs the scoring benchmark on the CUDA execution provider and on the CPU,
# and prints tokens/s, the provider that actually ran, and the GPU.
#
#   bash bench/gpu.sh                     # defaults: model 128k, 96 references, batch 32 on CUDA
#   MODELS=32k,128k,1b REQUESTS=192 BATCH=64 REPEAT=3 bash bench/gpu.sh
#
# Needs: Node 20+, this repository with node_modules installed *with* onnxruntime-node's CUDA
# provider (npm ci without ONNXRUNTIME_NODE_INSTALL=skip, on linux-x64), CUDA 12 and cuDNN 9
# libraries on the loader path, and /usr/bin/python3 with torch and onnx to build the model
# (or a bench/.cache/ copied from a machine that built it).
set -uo pipefail
cd "$(dirname "$0")/.."
MODELS="${MODELS:-128k}"
REQUESTS="${REQUESTS:-96}"
BATCH="${BATCH:-32}"
CPU_REQUESTS="${CPU_REQUESTS:-32}"
REPEAT="${REPEAT:-2}"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found (no NVIDIA GPU visible)"
nproc
node --version
ort_bin="node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
if ls "$ort_bin" 2>/dev/null | grep -q providers_cuda; then
  echo "onnxruntime-node CUDA provider: installed"
else
  echo "onnxruntime-node CUDA provider: NOT installed in $ort_bin — the cuda run below falls back to CPU (install without ONNXRUNTIME_NODE_INSTALL=skip)"
fi

echo "== build"
npm run build --silent || exit 1

echo "== CUDA (batch $BATCH, $REQUESTS references)"
node bench/scoring.js --models "$MODELS" --requests "$REQUESTS" --batch-size "$BATCH" --device cuda --no-peer --repeat "$REPEAT"

echo "== CPU (batch 16, $CPU_REQUESTS references, PyTorch eager peer where torch is installed)"
node bench/scoring.js --models "$MODELS" --requests "$CPU_REQUESTS" --batch-size 16 --device cpu --repeat "$REPEAT"
