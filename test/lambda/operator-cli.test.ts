/**
 * `npm run verify` and `npm run restore` as an operator runs them (arguments, environment, output,
 * exit status), over what the real downloader stored in the downloader's world of fakes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  FILE,
  INSTANCE,
  bucket,
  deliver,
  expectContiguousObjects,
  newFile,
  rds,
  resetDownloaderWorld,
  s3,
} from './support/downloader-world';
import { ENV } from '../../lambda/shared/contract';
import type { CliClients, CliIo } from '../../scripts/cli/common';
import { runRestore } from '../../scripts/cli/restore';
import { runVerify } from '../../scripts/cli/verify';
import { auditLines } from './support/fake-rds';
import { BUCKET, LEDGER_TABLE, REGION } from './support/lambda-harness';

const CONTENT = auditLines(200);
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

function clients(): CliClients {
  return {
    s3: new S3Client({ region: REGION, credentials }),
    ledger: DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION, credentials })),
    rds: new RDSClient({ region: REGION, credentials }),
  };
}

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

async function run(command: typeof runVerify, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const io: CliIo = { stdout, stderr, env };
  const code = await command(args, io, clients);
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() };
}

let work: string;
let keys: string[];

beforeEach(async () => {
  resetDownloaderWorld();
  work = mkdtempSync(join(tmpdir(), 'operator-cli-'));
  rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceIdentifier: INSTANCE, DBClusterIdentifier: 'c', Engine: 'aurora-mysql' }] });
  rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DBClusterIdentifier: 'c', DBClusterParameterGroup: 'audit' }] });
  rds.on(DescribeDBClusterParametersCommand).resolves({ Parameters: [{ ParameterName: 'server_audit_logging', ParameterValue: 'ON' }] });
  newFile(CONTENT);
  await deliver(0);
  keys = expectContiguousObjects(FILE, Buffer.byteLength(CONTENT));
});

function tamper(key: string): void {
  const body = bucket.objects.get(key)?.body.toString() ?? '';
  bucket.tamper(key, body.replace('SELECT', 'DELETE'));
}

describe('npm run verify', () => {
  const target = ['--bucket', BUCKET, '--table', LEDGER_TABLE];

  test('clean: exit 0, a CLEAN report, the JSON report written', async () => {
    const json = join(work, 'report.json');

    const { code, stdout } = await run(runVerify, [...target, '--json', json]);

    expect(code).toBe(0);
    expect(stdout.toString()).toContain('Result: CLEAN');
    expect(stdout.toString()).toContain(`RDS: 1 files listed on 1 instances`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report).toMatchObject({ bucket: BUCKET, table: LEDGER_TABLE, findings: [], totals: { objectsChecked: keys.length, findings: 0 } });
  });

  test('a tampered object: exit 1, the finding in the text and the JSON; bucket and table from the environment', async () => {
    tamper(keys[1]);

    const { code, stdout } = await run(runVerify, ['--json', '-', '--deep'], { [ENV.bucket]: BUCKET, [ENV.ledgerTable]: LEDGER_TABLE });

    expect(code).toBe(1);
    const report = JSON.parse(stdout.toString());
    expect(report.findings.map((f: { code: string; key: string }) => [f.code, f.key])).toEqual([
      ['CHECKSUM_MISMATCH', keys[1]],
      ['CONTENT_MISMATCH', keys[1]],
    ]);
    const text = await run(runVerify, target);
    expect(text.code).toBe(1);
    expect(text.stdout.toString()).toMatch(/CHECKSUM_MISMATCH \(1\) — /);
    expect(text.stdout.toString()).toContain(keys[1]);
    expect(text.stdout.toString()).toContain('Result: 1 FINDING');
  });

  test('--instance asks RDS for exactly those instances; --skip-rds does not call RDS', async () => {
    await run(runVerify, [...target, '--instance', INSTANCE]);
    expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(0);
    expect(rds.commandCalls(DescribeDBLogFilesCommand).map((c) => c.args[0].input.DBInstanceIdentifier)).toEqual([INSTANCE]);

    rds.resetHistory();
    const skipped = await run(runVerify, [...target, '--skip-rds']);
    expect(skipped.code).toBe(0);
    expect(rds.calls()).toHaveLength(0);
    expect(skipped.stdout.toString()).toContain('RDS: not consulted');
  });

  test('usage errors exit 2: no bucket, unknown option, --stack, bad numbers', async () => {
    for (const args of [['--table', LEDGER_TABLE], [...target, '--bogus'], ['--stack', 'AuditLab-BackupPipeline'], [...target, '--stale-minutes', 'soon']]) {
      const { code, stderr } = await run(runVerify, args);
      expect(code).toBe(2);
      expect(stderr).toMatch(/^verify: /);
    }
    expect((await run(runVerify, ['--stack', 'x'])).stderr).toContain('BackupBucketName');
  });

  test('an infrastructure error (access denied) exits 2, not 1', async () => {
    s3.on(ListObjectsV2Command).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));

    const { code, stderr } = await run(runVerify, target);

    expect(code).toBe(2);
    expect(stderr).toContain('AccessDenied: Access Denied');
  });

  test('--help documents every finding code and exits 0', async () => {
    const { code, stdout } = await run(runVerify, ['--help']);
    expect(code).toBe(0);
    for (const findingCode of ['GAP', 'CHECKSUM_MISMATCH', 'NOT_IN_LEDGER', 'LOST', 'LEFTOVER_INTENT', 'ORPHAN_OBJECT']) {
      expect(stdout.toString()).toContain(findingCode);
    }
  });
});

describe('npm run restore', () => {
  const args = (out: string, withTable = true) => [
    '--bucket',
    BUCKET,
    '--instance',
    INSTANCE,
    '--file',
    FILE,
    '--out',
    out,
    ...(withTable ? ['--table', LEDGER_TABLE] : []),
  ];
  const hex = (data: string) => createHash('sha256').update(data).digest('hex');

  test('writes the file byte-identical via PATH.partial and prints its SHA-256', async () => {
    const out = join(work, 'restored.log');

    const { code, stderr } = await run(runRestore, args(out));

    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(CONTENT);
    expect(readdirSync(work)).toEqual(['restored.log']);
    expect(stderr).toContain(`${Buffer.byteLength(CONTENT)} bytes from ${keys.length} objects`);
    expect(stderr).toContain(`hex ${hex(CONTENT)}`);
    expect(stderr).toContain('ledger status DONE');
  });

  test('to stdout', async () => {
    const { code, stdout } = await run(runRestore, args('-'));
    expect(code).toBe(0);
    expect(stdout.toString()).toBe(CONTENT);
  });

  test('a tampered object: exit 1 and no output file, not even a partial one', async () => {
    tamper(keys[2]);
    const out = join(work, 'restored.log');

    const { code, stderr } = await run(runRestore, args(out));

    expect(code).toBe(1);
    expect(stderr).toContain(`object ${keys[2]} hashes to`);
    expect(stderr).toContain('but the ledger recorded');
    expect(readdirSync(work)).toEqual([]);
  });

  test('to stdout, a tampered object still exits 1 and says the output is not the file', async () => {
    tamper(keys[2]);
    const { code, stderr } = await run(runRestore, args('-'));
    expect(code).toBe(1);
    expect(stderr).toContain('what was written to stdout is incomplete or not the backed-up file');
  });

  test('without a ledger, bytes that do not match the SHA-256 S3 stored are still caught; the warning names the limit', async () => {
    const object = bucket.objects.get(keys[0]);
    if (!object) throw new Error('no object');
    object.body = Buffer.from(object.body.toString().replace('SELECT', 'DELETE'));
    const out = join(work, 'restored.log');

    const { code, stderr } = await run(runRestore, args(out, false));

    expect(code).toBe(1);
    expect(stderr).toContain('no ledger given');
    expect(stderr).toContain(`but S3 stored`);
    expect(existsSync(out)).toBe(false);
  });

  test('a missing range: exit 1 before anything is written', async () => {
    bucket.remove(keys[1]);
    const out = join(work, 'restored.log');

    const { code, stderr } = await run(runRestore, args(out));

    expect(code).toBe(1);
    expect(stderr).toMatch(/bytes \d+-\d+ are in no object \(gap before /);
    expect(readdirSync(work)).toEqual([]);
  });

  test('an output that fails (a closed pipe) ends the restore with exit 2 instead of hanging', async () => {
    const brokenPipe = new Writable({
      highWaterMark: 16,
      write: (_chunk, _encoding, callback) => callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })),
    });
    const stderr = new PassThrough();
    const err: Buffer[] = [];
    stderr.on('data', (chunk: Buffer) => err.push(chunk));

    const code = await runRestore(args('-'), { stdout: brokenPipe, stderr, env: {} }, clients);

    expect(code).toBe(2);
    expect(Buffer.concat(err).toString()).toContain('write EPIPE');
  });

  test('an existing output is not replaced without --force', async () => {
    const out = join(work, 'restored.log');
    writeFileSync(out, 'keep me');

    expect((await run(runRestore, args(out))).code).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect((await run(runRestore, [...args(out), '--force'])).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(CONTENT);
  });
});
