/** @type {import('jest').Config} */
module.exports = {
  // onnxruntime-node checks typed arrays with instanceof against the host realm;
  // this environment hands the host constructors to each test file's realm.
  testEnvironment: '<rootDir>/__tests__/helpers/host-realm-environment.js',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 120000,
};
