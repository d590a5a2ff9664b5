/** The local RDS log endpoint's public API (see README.md in this folder). */
export { startRdsLogEndpoint, ADMIN_PATH_PREFIX } from './server';
export type { RdsLogEndpoint } from './server';
export { parseOptions, parseFaults, ConfigError } from './config';
export * from './types';
