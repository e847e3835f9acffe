// Which GPU and driver a CUDA run used, for the report's provenance. Read from nvidia-smi
// (present wherever the NVIDIA driver is); absent or failing, the report says "unknown"
// rather than guessing.
import { execFile } from 'child_process';

export interface GpuInfo {
  name: string;
  driver_version: string;
  /** Highest CUDA version the driver supports, from nvidia-smi's banner. */
  cuda_version: string;
}

function run(args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { timeout: 5000, encoding: 'utf8', env: process.env }, (err, stdout) =>
      resolve(err ? null : stdout),
    );
  });
}

export async function readGpuInfo(): Promise<GpuInfo> {
  const [query, banner] = await Promise.all([
    run(['--query-gpu=name,driver_version', '--format=csv,noheader']),
    run([]),
  ]);
  const [name, driver] = (query ?? '')
    .split('\n')[0]
    .split(',')
    .map((s) => s.trim());
  const cuda = /CUDA Version:\s*([\d.]+)/.exec(banner ?? '')?.[1];
  return { name: name || 'unknown', driver_version: driver || 'unknown', cuda_version: cuda ?? 'unknown' };
}
