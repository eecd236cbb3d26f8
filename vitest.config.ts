import { defineConfig } from 'vitest/config';

const tests = '{domain,projections,adapters,services,infra}/**/*.test.ts';
// Tests that take a shared server down (RabbitMQ restarting) run alone, after the rest.
const disruptive = '{domain,projections,adapters,services,infra}/**/*.disruptive.test.ts';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: integration tests share real servers, so keep the fan-out modest.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'suite', include: [tests], exclude: [disruptive, '**/node_modules/**'] },
      },
      { extends: true, test: { name: 'disruptive', include: [disruptive], maxWorkers: 1 } },
    ],
  },
});
