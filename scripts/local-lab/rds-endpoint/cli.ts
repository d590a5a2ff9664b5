/**
 * Starts the local RDS log endpoint from a JSON config file (the RdsLogEndpointOptions shape; relative
 * paths resolve against the file's folder) and prints its URL as the first line on stdout.
 *
 *   node --import tsx scripts/local-lab/rds-endpoint/cli.ts --config lab-rds.json [--port 4599] [--state state.json]
 *
 * Runs until SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseOptions } from './config';
import { ADMIN_PATH_PREFIX, startRdsLogEndpoint } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      state: { type: 'string' },
    },
    strict: true,
  });
  if (!values.config) throw new Error('usage: cli.ts --config <file.json> [--port N] [--state <file.json>]');
  const configPath = resolve(values.config);
  const options = parseOptions(JSON.parse(readFileSync(configPath, 'utf8')), dirname(configPath));
  if (values.port !== undefined) options.port = Number(values.port);
  if (values.state !== undefined) options.stateFile = resolve(values.state);

  const endpoint = await startRdsLogEndpoint(options);
  process.stdout.write(`${endpoint.url}\n`);
  process.stderr.write(
    `rds-endpoint: listening on ${endpoint.url} (admin: ${endpoint.url}${ADMIN_PATH_PREFIX}{stats,faults,files})\n`,
  );

  const stop = (signal: string) => {
    process.stderr.write(`rds-endpoint: ${signal}, stopping\n`);
    endpoint.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(`rds-endpoint: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
