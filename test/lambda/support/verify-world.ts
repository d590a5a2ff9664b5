/**
 * The verifier over the downloader's world: real Ledger, BackupObjects and RdsLogReader on clients of
 * the SDK classes the world's fakes answer, so what is verified is what the real downloader stored.
 * Import after `downloader-world`.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BackupObjects } from '../../../lambda/shared/backup-objects';
import { Ledger } from '../../../lambda/shared/ledger';
import { RdsLogReader } from '../../../lambda/shared/rds-log-reader';
import { type VerifyDependencies, type VerifyOptions, type VerifyResult, verifyBackups } from '../../../lambda/shared/verify';
import { INSTANCE } from './downloader-world';
import { BUCKET, LEDGER_TABLE, REGION } from './lambda-harness';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
export const STALE_MS = 45 * 60_000;

export const verifierClients = {
  ledger: new Ledger(DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION, credentials })), LEDGER_TABLE),
  objects: new BackupObjects(new S3Client({ region: REGION, credentials }), BUCKET),
  reader: new RdsLogReader(new RDSClient({ region: REGION, credentials })),
};

/** RDS lists the files of `instances`; undefined: RDS is not consulted. */
export function verifierDependencies(instances: readonly string[] | undefined): VerifyDependencies {
  return {
    ledger: verifierClients.ledger,
    objects: verifierClients.objects,
    ...(instances ? { rds: { reader: verifierClients.reader, instances: async () => instances } } : {}),
  };
}

/** Verifies with RDS listing `instances` (default: the world's instance; null: RDS not consulted). */
export function verify(options: Partial<VerifyOptions> = {}, instances: readonly string[] | null = [INSTANCE]): Promise<VerifyResult> {
  const deps = verifierDependencies(instances ?? undefined);
  return verifyBackups(deps, { now: Date.now(), staleMs: STALE_MS, ...options });
}

export function codes(result: VerifyResult): string[] {
  return result.report.findings.map((finding) => finding.code).sort();
}
