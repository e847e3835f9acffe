/** @type {import('jest').Config} */
module.exports = {
  // onnxruntime-node checks typed arrays with instanceof against the host realm;
  // this environment hands the host constructors to each test file's realm.
  testEnvironment: '<rootDir>/__tests__/helpers/host-realm-environment.js',
  // Transpile only (tsconfig.jest.json): types are checked once by `npm run typecheck`, not per test file.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] },
  // One onnxruntime thread per in-process session: two workers share two cores (see the file).
  setupFiles: ['<rootDir>/__tests__/helpers/onnx-threads.js'],
  testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  // Jest's default on 2 cores is one worker; the parent mostly waits, so use both cores.
  maxWorkers: 2,
  testTimeout: 120000,
};
