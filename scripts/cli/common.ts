/**
 * What the operator commands (verify, restore) share: option parsing with usage errors, the exit
 * statuses, and SDK clients configured from the standard AWS settings (credentials chain, AWS_REGION
 * or --region, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> for the local lab or another endpoint).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UsageError } from './args';

export { parseOptions, positiveNumber, UsageError } from './args';

/** 0: clean; 1: findings / integrity failure; 2: usage or infrastructure error. */
export const EXIT = { ok: 0, findings: 1, error: 2 } as const;

/** Where a command writes: the process streams in real use, buffers in tests. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/** An option, else its environment variable, else a usage error naming both. */
export function optionOrEnv(io: CliIo, value: string | undefined, option: string, envName: string): string {
  const resolved = value ?? io.env[envName]?.trim();
  if (!resolved) throw new UsageError(`${option} is required (or set ${envName})`);
  return resolved;
}

/** The CloudFormation outputs that name the resources, for the usage text. */
export const STACK_OUTPUTS_HINT = `The deployed stack (default name AuditLab-BackupPipeline) exports them as the outputs
BackupBucketName and LedgerTableName:
  aws cloudformation describe-stacks --stack-name AuditLab-BackupPipeline --query "Stacks[0].Outputs"
(--stack is not offered: @aws-sdk/client-cloudformation is not a dependency of this project.)`;

export interface CliClients {
  s3: S3Client;
  ledger: DynamoDBDocumentClient;
  rds: RDSClient;
}

export function createCliClients(region: string | undefined): CliClients {
  const common = region ? { region } : {};
  return {
    // The digests are ours to check; the SDK adds no checksum of its own to requests or responses.
    s3: new S3Client({ ...common, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    ledger: DynamoDBDocumentClient.from(new DynamoDBClient(common)),
    rds: new RDSClient({ ...common, retryMode: 'adaptive', maxAttempts: 10 }),
  };
}

export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
}

/**
 * Runs a command's body and maps what escapes it to the documented exits: a usage error (exit 2, with
 * the --help hint) or a failure to complete (exit 2, described). Findings are the body's own exit 1.
 */
export async function runCommand(name: string, activity: string, io: CliIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${name}: ${error.message}\n\nRun with --help for usage.\n`);
      return EXIT.error;
    }
    io.stderr.write(`${name}: could not complete the ${activity}: ${describeError(error)}\n`);
    return EXIT.error;
  }
}

/** Runs a command as the process's main module: its result becomes the exit code. */
export function runAsMain(command: (argv: string[]) => Promise<number>): void {
  command(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
