import { CustomResourceProviderBase, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/**
 * S3 Object Lock mode of the evidence bucket. COMPLIANCE: no one, root included, can delete a version
 * or shorten its retention before it expires. GOVERNANCE: the same, except for a principal allowed
 * `s3:BypassGovernanceRetention` (this bucket's policy allows it to the retention admin role only).
 * OFF: no lock; only the bucket policy and versioning protect the objects.
 */
export const OBJECT_LOCK_MODES = ['COMPLIANCE', 'GOVERNANCE', 'OFF'] as const;
export type ObjectLockMode = (typeof OBJECT_LOCK_MODES)[number];

/**
 * Where objects go after their immediately readable period. GLACIER_IR and STANDARD_IA read back at
 * once; GLACIER and DEEP_ARCHIVE need a RestoreObject (hours) before GetObject. NONE keeps S3 Standard.
 */
export const ARCHIVE_STORAGE_CLASSES = ['GLACIER_IR', 'STANDARD_IA', 'GLACIER', 'DEEP_ARCHIVE', 'NONE'] as const;
export type ArchiveStorageClass = (typeof ARCHIVE_STORAGE_CLASSES)[number];

/** PCI DSS 10.5.1: keep audit log history for at least 12 months. */
export const DEFAULT_RETENTION_DAYS = 365;
/** PCI DSS 10.5.1: the most recent three months immediately available for analysis. */
export const MIN_IMMEDIATELY_READABLE_DAYS = 90;
/** S3 Object Lock's longest default retention (100 years). */
export const MAX_RETENTION_DAYS = 36500;
export const DEFAULT_ARCHIVE_STORAGE_CLASS: ArchiveStorageClass = 'GLACIER_IR';

const STORAGE_CLASSES: Record<Exclude<ArchiveStorageClass, 'NONE'>, s3.StorageClass> = {
  GLACIER_IR: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
  STANDARD_IA: s3.StorageClass.INFREQUENT_ACCESS,
  GLACIER: s3.StorageClass.GLACIER,
  DEEP_ARCHIVE: s3.StorageClass.DEEP_ARCHIVE,
};

/** Retention and WORM settings of the evidence bucket (every one optional; defaults below). */
export interface EvidenceRetentionOptions {
  /**
   * Object Lock mode; the bucket's default retention is this mode for `retentionDays`.
   * @default 'GOVERNANCE' when data is retained, 'OFF' when it is not (a lab that `cdk destroy` must empty)
   */
  readonly objectLockMode?: ObjectLockMode;
  /** Days every object version is kept (and locked), then expired. @default 365 */
  readonly retentionDays?: number;
  /** Storage class objects move to after `archiveAfterDays`. @default 'GLACIER_IR' */
  readonly archiveStorageClass?: ArchiveStorageClass;
  /** Days in S3 Standard before the transition; at least 90. @default 90 */
  readonly archiveAfterDays?: number;
  /**
   * IAM role ARN of the one principal the bucket policy lets manage locks: place legal holds and
   * extend retention in every mode; in GOVERNANCE and OFF also bypass governance retention and delete
   * object versions (the purge path). Assumed-role sessions match by role ARN (`aws:PrincipalArn`).
   * @default - none: nobody may change locks or delete objects until the bucket policy is changed
   */
  readonly retentionAdminRoleArn?: string;
}

export interface EvidenceBucketProps extends EvidenceRetentionOptions {
  /**
   * `false`: a throw-away lab. Bucket, access-log bucket and key are destroyed with the stack and the
   * buckets emptied first by CDK's auto-delete custom resource (which cannot delete locked versions).
   */
  readonly retainData: boolean;
  /** Prefix of the server access logs in the access-log bucket. */
  readonly accessLogPrefix: string;
}

/** The settings after defaults, as the bucket applies them. */
export interface EvidenceRetention {
  readonly objectLockMode: ObjectLockMode;
  readonly retentionDays: number;
  readonly archiveStorageClass: ArchiveStorageClass;
  readonly archiveAfterDays: number;
  readonly retentionAdminRoleArn?: string;
}

/** Applies the defaults and rejects combinations S3 or the teardown cannot honour. */
export function resolveEvidenceRetention(options: EvidenceRetentionOptions, retainData: boolean): EvidenceRetention {
  const objectLockMode = options.objectLockMode ?? (retainData ? 'GOVERNANCE' : 'OFF');
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  const archiveStorageClass = options.archiveStorageClass ?? DEFAULT_ARCHIVE_STORAGE_CLASS;
  const archiveAfterDays = options.archiveAfterDays ?? MIN_IMMEDIATELY_READABLE_DAYS;
  const adminRoleArn = options.retentionAdminRoleArn;

  if (!OBJECT_LOCK_MODES.includes(objectLockMode)) {
    throw new Error(`objectLockMode must be one of ${OBJECT_LOCK_MODES.join(', ')}; got ${String(objectLockMode)}`);
  }
  if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > MAX_RETENTION_DAYS) {
    throw new Error(`retentionDays must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}; got ${retentionDays}`);
  }
  if (!ARCHIVE_STORAGE_CLASSES.includes(archiveStorageClass)) {
    throw new Error(`archiveStorageClass must be one of ${ARCHIVE_STORAGE_CLASSES.join(', ')}; got ${String(archiveStorageClass)}`);
  }
  if (!Number.isInteger(archiveAfterDays) || archiveAfterDays < MIN_IMMEDIATELY_READABLE_DAYS) {
    throw new Error(
      `archiveAfterDays must be a whole number of at least ${MIN_IMMEDIATELY_READABLE_DAYS} (PCI DSS 10.5.1 keeps the ` +
        `last three months immediately readable); got ${archiveAfterDays}`,
    );
  }
  if (archiveStorageClass !== 'NONE' && archiveAfterDays >= retentionDays) {
    throw new Error(
      `archiveAfterDays (${archiveAfterDays}) must be less than retentionDays (${retentionDays}): objects would expire ` +
        `before they are archived; set archiveStorageClass to NONE or keep them longer`,
    );
  }
  if (objectLockMode !== 'OFF' && !retainData) {
    throw new Error(
      `objectLockMode ${objectLockMode} needs retainData=true: with retainData=false the stack empties the bucket on ` +
        `\`cdk destroy\`, which cannot delete locked object versions, so the teardown would fail. Use objectLockMode ` +
        `OFF for a throw-away lab, or keep the data.`,
    );
  }
  if (adminRoleArn !== undefined && !Token.isUnresolved(adminRoleArn) && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(adminRoleArn)) {
    throw new Error(`retentionAdminRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>); got ${adminRoleArn}`);
  }
  return { objectLockMode, retentionDays, archiveStorageClass, archiveAfterDays, retentionAdminRoleArn: adminRoleArn };
}

/** Where CDK's auto-delete custom resource provider lives (one per stack, shared by every bucket). */
const AUTO_DELETE_PROVIDER_ID = 'Custom::S3AutoDeleteObjectsCustomResourceProvider';

/** Bucket-policy statement ids, so tests and readers can find each rule. */
export const EVIDENCE_POLICY_SIDS = {
  deletion: 'DenyDeletingEvidence',
  locks: 'DenyChangingObjectLocks',
} as const;

/**
 * The evidence bucket for backed-up audit logs: versioned, KMS-encrypted with its own key, TLS-only,
 * S3 Object Lock per mode with a default retention, a lifecycle that keeps objects immediately readable
 * for at least 90 days, archives them, and expires every version after the retention period, and a
 * bucket policy that denies deleting objects or changing their locks to everyone the mode does not
 * need. Server access logs go to a separate, unlocked bucket (S3 cannot deliver them to a lock-enabled
 * one). Its key (`<id>Key`) and access-log bucket (`AccessLog<id>`) are created beside it in `scope`.
 *
 * Uploads without a checksum cannot be denied by policy: S3 has no condition key for the
 * `x-amz-checksum-*` headers (the service authorization reference lists none for PutObject). With
 * Object Lock on, S3 itself rejects a PutObject without Content-MD5 or a checksum header; in every mode
 * the downloader sends SHA-256 and the verifier compares what S3 reports with the ledger.
 */
export class EvidenceBucket extends s3.Bucket {
  public readonly bucketKey: kms.Key;
  public readonly accessLogBucket: s3.Bucket;
  public readonly retention: EvidenceRetention;

  constructor(scope: Construct, id: string, props: EvidenceBucketProps) {
    const retention = resolveEvidenceRetention(props, props.retainData);
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // S3 delivers server access logs only to SSE-S3 buckets without Object Lock. They are the access
    // trail of the evidence, so they are kept as long as the evidence itself.
    const accessLogBucket = new s3.Bucket(scope, `AccessLog${id}`, {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { id: 'ExpireAfterRetention', expiration: Duration.days(retention.retentionDays) },
      ],
      removalPolicy,
      autoDeleteObjects: !props.retainData,
    });
    Validations.of(accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server-access-log destination of the backup bucket; logging it would log its own log deliveries.',
    });

    // A customer managed key (not SSE-S3): audit logs are compliance evidence, and a key policy plus
    // CloudTrail records of every data-key use show who could and did read them. Key rotation is yearly;
    // the S3 bucket key keeps KMS request costs flat. The key lives and dies with the bucket: deleting it
    // while the bucket is retained would make every backup unreadable.
    const bucketKey = new kms.Key(scope, `${id}Key`, {
      description: 'Encrypts backed-up Aurora MySQL audit logs',
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow: Duration.days(30),
    });

    const locked = retention.objectLockMode !== 'OFF';
    super(scope, id, {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: bucketKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Objects are written once; versioning keeps an overwrite or delete from destroying a backup, and
      // Object Lock requires it.
      versioned: true,
      objectLockEnabled: locked ? true : undefined,
      objectLockDefaultRetention: locked ? defaultRetention(retention) : undefined,
      lifecycleRules: lifecycleRules(retention),
      serverAccessLogsBucket: accessLogBucket,
      serverAccessLogsPrefix: props.accessLogPrefix,
      removalPolicy,
      autoDeleteObjects: !props.retainData,
    });
    this.bucketKey = bucketKey;
    this.accessLogBucket = accessLogBucket;
    this.retention = retention;

    const admin = retention.retentionAdminRoleArn === undefined ? [] : [retention.retentionAdminRoleArn];
    // Lifecycle expiration is S3 acting on its own and is not subject to the bucket policy, so these
    // denials never stop retention from ending. Who may still delete: in COMPLIANCE nobody (the lock
    // forbids it anyway until it expires, then lifecycle deletes); in GOVERNANCE and OFF the retention
    // admin; in a lab (retainData=false, always OFF) also the auto-delete custom resource that empties the
    // bucket before CloudFormation deletes it.
    const mayDelete = [
      ...(retention.objectLockMode === 'COMPLIANCE' ? [] : admin),
      ...(props.retainData ? [] : [autoDeleteProviderRoleArn(this)]),
    ];
    this.addToResourcePolicy(
      denyAllExcept(EVIDENCE_POLICY_SIDS.deletion, ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention'], this.arnForObjects('*'), mayDelete),
    );
    // Retention changes (shortening is impossible in COMPLIANCE, possible with bypass in GOVERNANCE) and
    // legal holds (placing one protects, removing one may expose) belong to the retention admin alone.
    // The downloader needs neither: the bucket's default retention applies to uploads without any lock
    // header, and sending lock headers on PutObject itself requires s3:PutObjectRetention.
    this.addToResourcePolicy(
      denyAllExcept(EVIDENCE_POLICY_SIDS.locks, ['s3:PutObjectRetention', 's3:PutObjectLegalHold'], this.arnForObjects('*'), admin),
    );
  }
}

function defaultRetention(retention: EvidenceRetention): s3.ObjectLockRetention {
  const duration = Duration.days(retention.retentionDays);
  return retention.objectLockMode === 'COMPLIANCE'
    ? s3.ObjectLockRetention.compliance(duration)
    : s3.ObjectLockRetention.governance(duration);
}

function lifecycleRules(retention: EvidenceRetention): s3.LifecycleRule[] {
  const archive = retention.archiveStorageClass === 'NONE' ? undefined : STORAGE_CLASSES[retention.archiveStorageClass];
  return [
    { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    {
      id: 'ArchiveThenExpire',
      transitions: archive
        ? [{ storageClass: archive, transitionAfter: Duration.days(retention.archiveAfterDays) }]
        : undefined,
      // Expiring the current version adds a delete marker; the version itself goes with the noncurrent rule.
      expiration: Duration.days(retention.retentionDays),
      // With a lock every version is held for the full retention from its creation, so a day after it
      // becomes noncurrent is enough (lifecycle never deletes a locked version). Without a lock only this
      // rule keeps an overwritten version: hold it for a full retention period after it was replaced.
      noncurrentVersionExpiration: Duration.days(retention.objectLockMode === 'OFF' ? retention.retentionDays : 1),
    },
    // A delete marker whose versions are all gone marks nothing.
    { id: 'RemoveExpiredDeleteMarkers', expiredObjectDeleteMarker: true },
  ];
}

function denyAllExcept(sid: string, actions: string[], resource: string, exempt: string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    effect: iam.Effect.DENY,
    principals: [new iam.AnyPrincipal()],
    actions,
    resources: [resource],
    conditions: exempt.length > 0 ? { ArnNotEquals: { 'aws:PrincipalArn': exempt } } : undefined,
  });
}

function autoDeleteProviderRoleArn(bucket: s3.Bucket): string {
  const provider = Stack.of(bucket).node.tryFindChild(AUTO_DELETE_PROVIDER_ID);
  if (!(provider instanceof CustomResourceProviderBase)) {
    throw new Error(`expected CDK's ${AUTO_DELETE_PROVIDER_ID} in the stack once autoDeleteObjects is on`);
  }
  return provider.roleArn;
}
