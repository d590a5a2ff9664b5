/**
 * Command-line parsing shared by the project's commands (the operator CLIs and the lab host's audit
 * analyser). No SDK imports: the analyser is bundled for the lab host and must not pull them in.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line input: the commands print it with their usage and exit with their usage status. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** parseArgs with its errors (unknown option, missing value) turned into usage errors. */
export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
    if (code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message);
    throw error;
  }
}
