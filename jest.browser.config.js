/** Browser tests: Debian's chromium driven by playwright-core (scripts/with-chromium.sh installs it). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/browser'],
  testMatch: ['**/*.test.ts'],
  // Transpile only (tsc --noEmit does the type check), which keeps the suite fast.
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 1,
};
