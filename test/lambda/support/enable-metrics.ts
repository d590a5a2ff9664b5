/**
 * Import first in a test file that asserts EMF output: Powertools Metrics decides at construction
 * (when a handler module loads) whether it prints, and which `service` dimension it uses.
 */
export const METRICS_TEST_SERVICE = 'audit-log-under-test';

process.env.POWERTOOLS_METRICS_DISABLED = 'false';
process.env.POWERTOOLS_SERVICE_NAME = METRICS_TEST_SERVICE;
