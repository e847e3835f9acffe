// One onnxruntime thread per session in tests. Jest runs two workers on the two cores, and
// onnxruntime's default pool takes every core with spinning threads, so two model-running
// test files at once oversubscribe the machine (measured: two organism files in parallel
// took 12.3 s, 8.0 s with this). A session that names its thread counts keeps them; the
// emgate processes the tests spawn are not affected. Results are the same within the
// tests' tolerances (thread count only reorders float sums).
const ort = require('onnxruntime-node');

const create = ort.InferenceSession.create.bind(ort.InferenceSession);
const isOptions = (v) => v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer);
const oneThread = (options = {}) => ({
  ...options,
  intraOpNumThreads: options.intraOpNumThreads ?? 1,
  interOpNumThreads: options.interOpNumThreads ?? 1,
});

// create(path | bytes, options?) or create(buffer, offset, length, options?).
ort.InferenceSession.create = (model, ...rest) => {
  if (typeof model === 'string' || ArrayBuffer.isView(model)) return create(model, oneThread(rest[0]));
  if (rest.length === 0 || isOptions(rest[0])) return create(model, oneThread(rest[0]));
  const [offset, length, options] = rest;
  return create(model, offset, length, oneThread(options));
};
