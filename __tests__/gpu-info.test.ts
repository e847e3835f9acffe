// GPU provenance read from nvidia-smi: a stand-in nvidia-smi on PATH prints what the real
// one prints; without one the report says "unknown" instead of failing or guessing.
import { chmodSync, mkdtempSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readGpuInfo } from '../src/runtime/gpu-info';

const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

it('reads name, driver and CUDA version from nvidia-smi', async () => {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'emgate-smi-'));
  writeFileSync(
    path.join(bin, 'nvidia-smi'),
    `#!/bin/sh
if [ "$1" = "--query-gpu=name,driver_version" ]; then echo "NVIDIA H100 80GB HBM3, 570.86.15"; exit 0; fi
echo "| NVIDIA-SMI 570.86.15    Driver Version: 570.86.15    CUDA Version: 12.8     |"
`,
  );
  chmodSync(path.join(bin, 'nvidia-smi'), 0o755);
  process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
  await expect(readGpuInfo()).resolves.toEqual({
    name: 'NVIDIA H100 80GB HBM3',
    driver_version: '570.86.15',
    cuda_version: '12.8',
  });
});

it('says unknown when nvidia-smi is missing', async () => {
  process.env.PATH = mkdtempSync(path.join(os.tmpdir(), 'emgate-empty-'));
  await expect(readGpuInfo()).resolves.toEqual({ name: 'unknown', driver_version: 'unknown', cuda_version: 'unknown' });
});
