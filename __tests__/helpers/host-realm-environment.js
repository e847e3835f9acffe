// Jest runs each test file in its own VM realm. onnxruntime-node validates tensor
// data with `instanceof Float32Array` (and friends) from the host realm, so typed
// arrays made inside a test would be rejected. Handing the host's constructors to
// the test realm makes both sides agree.
const { TestEnvironment } = require('jest-environment-node');

const HOST_CONSTRUCTORS = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Buffer',
];

class HostRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of HOST_CONSTRUCTORS) {
      if (globalThis[name] !== undefined) this.global[name] = globalThis[name];
    }
  }
}

module.exports = HostRealmEnvironment;
