/**
 * AWS SDK clients, each created once per execution environment on first use (a getter per service
 * keeps a bundle free of the SDKs its handler never touches). Region, credentials and endpoints come
 * from the standard SDK settings (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>), which is
 * how the local lab points the handlers at its services — there is no other switch.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { logPortionFastPath } from './log-portion-decoder';
import { ThrottleRetryCounter } from './throttle-retries';

/**
 * Adaptive retry adds client-side rate limiting on top of backoff, which is what an account-wide
 * token bucket (the RDS API budget) needs.
 */
const RETRY = { retryMode: 'adaptive', maxAttempts: 6 } as const;
/** RDS throttles per account and region, shared with the console and IaC: allow more patience. */
const RDS_RETRY = { retryMode: 'adaptive', maxAttempts: 10 } as const;

// Plain functions over module-level caches (not a shared `once(...)` call) so that esbuild can drop
// the SDK of every client a handler never asks for.
let rds: RDSClient | undefined;
let sqs: SQSClient | undefined;
let s3: S3Client | undefined;
let dynamoDb: DynamoDBClient | undefined;
let ledgerDocuments: DynamoDBDocumentClient | undefined;

/** RDS calls the SDK retried after throttling, for the ThrottleRetries metric of each invocation. */
export const rdsThrottleRetries = new ThrottleRetryCounter();

export function rdsClient(): RDSClient {
  if (!rds) {
    rds = new RDSClient(RDS_RETRY);
    rdsThrottleRetries.attach(rds);
    rds.middlewareStack.use(logPortionFastPath);
  }
  return rds;
}

export function sqsClient(): SQSClient {
  return (sqs ??= new SQSClient(RETRY));
}

/**
 * Every PUT carries our own SHA-256, so the SDK's default CRC32 (sent as an aws-chunked trailer that
 * some S3-compatible endpoints reject) is only computed where an operation requires a checksum.
 */
export function s3Client(): S3Client {
  return (s3 ??= new S3Client({
    ...RETRY,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  }));
}

/** Low-level client: shared by the ledger's document client and the idempotency persistence layer. */
export function dynamoDbClient(): DynamoDBClient {
  return (dynamoDb ??= new DynamoDBClient(RETRY));
}

export function ledgerDocumentClient(): DynamoDBDocumentClient {
  return (ledgerDocuments ??= DynamoDBDocumentClient.from(dynamoDbClient(), {
    marshallOptions: { removeUndefinedValues: true },
  }));
}
