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

/** A number option: `fallback` when absent; a usage error naming the option unless finite and above 0. */
export function positiveNumber(option: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${option} must be a positive number, got "${raw}"`);
  return value;
}

/** A count option (1, 2, ...): `fallback` when absent; a usage error naming the option otherwise. */
export function positiveWholeNumber(option: string, raw: string | undefined, fallback: number): number {
  const value = positiveNumber(option, raw, fallback);
  if (!Number.isInteger(value)) throw new UsageError(`${option} must be a whole number, got "${raw}"`);
  return value;
}

/** A count option that may be 0: `fallback` when absent; a usage error naming the option otherwise. */
export function wholeNumberFromZero(option: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < 0) throw new UsageError(`${option} must be a whole number, 0 or more, got "${raw}"`);
  return value;
}

/** An endpoint option: undefined when absent; a usage error naming the option unless an http(s) URL. */
export function httpUrl(option: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`${option} must be an http:// or https:// URL, got "${raw}"`);
  }
  return raw;
}
