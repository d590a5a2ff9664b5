/** Type checking is done once by `tsc --noEmit` (npm test runs it first), so ts-jest only transpiles. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { isolatedModules: true, diagnostics: false }],
  },
  snapshotSerializers: ['<rootDir>/test/helpers/asset-hash-serializer.js'],
  testTimeout: 60000,
};
