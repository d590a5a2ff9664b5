/**
 * `npm run restore`: writes one backed-up audit log file, byte for byte, to a path or stdout, checking
 * every object's SHA-256 on the way (scripts/cli/restore-file.ts). A file output is written to
 * PATH.partial and renamed only when everything checked out; on any failure the partial file is
 * removed. Stdout cannot be taken back: on failure the exit status is non-zero and stderr says so.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { BackupObjects } from '../../lambda/shared/backup-objects';
import { ENV } from '../../lambda/shared/contract';
import { Ledger } from '../../lambda/shared/ledger';
import {
  type CliClients,
  type CliIo,
  EXIT,
  STACK_OUTPUTS_HINT,
  UsageError,
  createCliClients,
  runAsMain,
  runCommand,
  optionOrEnv,
  parseOptions,
  processIo,
} from './common';
import { RestoreError, type RestoreResult, type RestoreSource, restoreLogFile } from './restore-file';

export const RESTORE_USAGE = `Usage: npm run restore -- --bucket BUCKET --instance ID --file NAME [--table TABLE] [--out PATH|-]

Writes the audit log file NAME of DB instance ID as the pipeline backed it up: its objects
logs/ID/NAME/{start}-{end} in byte order, streamed (memory does not grow with the file). Every
object's SHA-256 is recomputed and compared with the one S3 stored for it and, with a ledger, with
the ledger's; the ranges must run from byte 0 without gap or overlap and be exactly the ledger's
Segments. Prints the file's size and SHA-256 (base64 and hex, as sha256sum prints it) on stderr.
Exit status 0 when everything matched, 1 on any mismatch, 2 on a usage or infrastructure error.

Options:
  --bucket NAME     backup bucket (default: $${ENV.bucket})
  --instance ID     DBInstanceIdentifier
  --file NAME       LogFileName as RDS lists it, e.g. audit/audit.log.0.2024-01-04-08-30.0
  --table NAME      ledger table (default: $${ENV.ledgerTable}); without a ledger the restore can only
                    show that the objects are what S3 holds now, not that they are what was stored
  --out PATH|-      write to PATH (via PATH.partial, renamed on success) or '-' for stdout (default)
  --force           replace an existing PATH
  --region REGION   AWS region (default: the SDK's)
  -h, --help        this text

${STACK_OUTPUTS_HINT}
`;

function summary(result: RestoreResult, destination: string): string {
  return (
    `restore: ${result.instance} ${result.file}: ${result.bytes} bytes from ${result.objects} objects -> ${destination}\n` +
    `restore: SHA-256 ${result.sha256Base64} (hex ${result.sha256Hex})` +
    (result.ledgerStatus ? `; ledger status ${result.ledgerStatus}` : '') +
    '\n'
  );
}

export async function runRestore(
  argv: string[],
  io: CliIo = processIo,
  clientsFor: (region: string | undefined) => CliClients = createCliClients,
): Promise<number> {
  return runCommand('restore', 'restore', io, async () => {
    const { values } = parseOptions({
      args: argv,
      options: {
        bucket: { type: 'string' },
        table: { type: 'string' },
        instance: { type: 'string' },
        file: { type: 'string' },
        out: { type: 'string', default: '-' },
        force: { type: 'boolean', default: false },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.stdout.write(RESTORE_USAGE);
      return EXIT.ok;
    }
    const bucket = optionOrEnv(io, values.bucket, '--bucket', ENV.bucket);
    if (!values.instance) throw new UsageError('--instance is required');
    if (!values.file) throw new UsageError('--file is required');
    const table = values.table ?? io.env[ENV.ledgerTable]?.trim();
    const out = values.out;
    if (out !== '-' && existsSync(out) && !values.force) throw new UsageError(`${out} exists; pass --force to replace it`);

    const clients = clientsFor(values.region);
    const source: RestoreSource = {
      objects: new BackupObjects(clients.s3, bucket),
      ...(table ? { ledger: new Ledger(clients.ledger, table) } : {}),
    };
    if (!table) io.stderr.write('restore: no ledger given: checking objects against the SHA-256 S3 holds for them only\n');

    if (out === '-') {
      try {
        const result = await restoreLogFile(source, values.instance, values.file, io.stdout);
        io.stderr.write(summary(result, 'stdout'));
        return EXIT.ok;
      } catch (error) {
        if (error instanceof RestoreError) {
          io.stderr.write(`restore: FAILED: ${error.message}\nrestore: what was written to stdout is incomplete or not the backed-up file\n`);
          return EXIT.findings;
        }
        throw error;
      }
    }

    const partial = `${out}.partial`;
    const sink = createWriteStream(partial);
    try {
      const result = await restoreLogFile(source, values.instance, values.file, sink);
      sink.end();
      await finished(sink);
      await rename(partial, out);
      io.stderr.write(summary(result, out));
      return EXIT.ok;
    } catch (error) {
      // A write still in flight fails once the stream is destroyed: expected, and not the story.
      sink.on('error', () => undefined);
      const closed = sink.closed ? Promise.resolve() : new Promise<void>((resolve) => sink.once('close', () => resolve()));
      sink.destroy();
      await closed;
      await rm(partial, { force: true });
      if (error instanceof RestoreError) {
        io.stderr.write(`restore: FAILED: ${error.message}\nrestore: nothing written to ${out}\n`);
        return EXIT.findings;
      }
      throw error;
    }
  });
}

if (require.main === module) runAsMain(runRestore);
