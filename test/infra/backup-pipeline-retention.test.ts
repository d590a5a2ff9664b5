/**
 * Retention and WORM of the evidence bucket: Object Lock per mode, lifecycle numbers, the bucket
 * policy's denials and who each one exempts, the access-log bucket's retention, and the prop
 * combinations refused at synth time. Props never change bundles, so no variant runs esbuild.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { BackupPipelineProps } from '../../lib/constructs/backup-pipeline';
import { EVIDENCE_POLICY_SIDS } from '../../lib/constructs/evidence-bucket';
import { cfnLint, formatCfnLintMatches, synthesizedTemplateFiles } from '../helpers/cfn-lint';
import { onlyResource, referencedId, resourcesOfType, synthPipeline } from '../helpers/pipeline-template';

const ADMIN_ROLE = 'arn:aws:iam::111111111111:role/audit-retention-admin';
const DELETE_ACTIONS = ['s3:BypassGovernanceRetention', 's3:DeleteObject', 's3:DeleteObjectVersion'];
const LOCK_ACTIONS = ['s3:PutObjectLegalHold', 's3:PutObjectRetention'];

type Resource = { Type: string; Properties: any; DeletionPolicy?: string };
type Statement = { Sid?: string; Effect: string; Principal: unknown; Action: string | string[]; Resource: unknown; Condition?: any };

function synth(props: BackupPipelineProps) {
  const synthesized = synthPipeline(props, { bundle: false });
  const { template } = synthesized;
  const [bucketId, bucket] = onlyResource(template, 'AWS::S3::Bucket', {
    Properties: { LoggingConfiguration: Match.anyValue() },
  }) as [string, Resource];
  const [accessLogBucketId, accessLogBucket] = onlyResource(template, 'AWS::S3::Bucket', {
    Properties: { LoggingConfiguration: Match.absent() },
  }) as [string, Resource];
  const policy = resourcesOfType(template, 'AWS::S3::BucketPolicy').find(
    ([, candidate]) => referencedId(candidate.Properties!.Bucket) === bucketId,
  )![1] as Resource;
  const statements = policy.Properties.PolicyDocument.Statement as Statement[];
  const sid = (id: string): Statement => {
    const found = statements.filter((statement) => statement.Sid === id);
    if (found.length !== 1) throw new Error(`expected one statement ${id}, found ${found.length}`);
    return found[0];
  };
  return { ...synthesized, bucketId, bucket, accessLogBucketId, accessLogBucket, statements, sid };
}

/** The object ARN pattern `<bucket ARN>/*` as the template writes it. */
const objectsOf = (bucketId: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/*']] });

const rules = (bucket: Resource): Array<Record<string, unknown>> => bucket.Properties.LifecycleConfiguration.Rules;
const rule = (bucket: Resource, id: string): Record<string, unknown> => {
  const found = rules(bucket).find((candidate) => candidate.Id === id);
  if (!found) throw new Error(`no lifecycle rule ${id}`);
  return found;
};

const production = synth({});
const compliance = synth({ objectLockMode: 'COMPLIANCE', retentionAdminRoleArn: ADMIN_ROLE });
const governance = synth({ objectLockMode: 'GOVERNANCE', retentionAdminRoleArn: ADMIN_ROLE });
const offRetained = synth({ objectLockMode: 'OFF', retentionAdminRoleArn: ADMIN_ROLE });
const lab = synth({ retainData: false });

describe('Object Lock per mode', () => {
  test('default with retained data: GOVERNANCE for 365 days', () => {
    expect(production.bucket.Properties.ObjectLockEnabled).toBe(true);
    expect(production.bucket.Properties.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } },
    });
  });

  test('COMPLIANCE with the configured retention', () => {
    const long = synth({ objectLockMode: 'COMPLIANCE', retentionDays: 2557, archiveStorageClass: 'DEEP_ARCHIVE', archiveAfterDays: 180 });
    expect(long.bucket.Properties.ObjectLockEnabled).toBe(true);
    expect(long.bucket.Properties.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2557 } },
    });
  });

  test('OFF: no Object Lock at all, versioning still on', () => {
    for (const off of [offRetained, lab]) {
      expect(off.bucket.Properties.ObjectLockEnabled).toBeUndefined();
      expect(off.bucket.Properties.ObjectLockConfiguration).toBeUndefined();
      expect(off.bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    }
  });

  test('the lab default (retainData=false) is OFF, so `cdk destroy` can empty the bucket', () => {
    expect(lab.bucket.DeletionPolicy).toBe('Delete');
    expect(
      resourcesOfType(lab.template, 'Custom::S3AutoDeleteObjects').map(([, r]) => referencedId(r.Properties!.BucketName)),
    ).toContain(lab.bucketId);
  });

  test('the locked bucket is not the access-log destination, and logs still go to the separate bucket', () => {
    for (const variant of [production, compliance]) {
      expect(variant.accessLogBucket.Properties.ObjectLockEnabled).toBeUndefined();
      expect(variant.bucket.Properties.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: variant.accessLogBucketId });
    }
  });
});

describe('lifecycle', () => {
  test('S3 Standard for 90 days, then Glacier Instant Retrieval, expired after 365 days', () => {
    expect(rule(production.bucket, 'ArchiveThenExpire')).toEqual({
      Id: 'ArchiveThenExpire',
      Status: 'Enabled',
      Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 90 }],
      ExpirationInDays: 365,
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
    });
  });

  test('aborts incomplete uploads after a day and clears delete markers left without versions', () => {
    expect(rule(production.bucket, 'AbortIncompleteUploads')).toEqual({
      Id: 'AbortIncompleteUploads',
      Status: 'Enabled',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    });
    expect(rule(production.bucket, 'RemoveExpiredDeleteMarkers')).toEqual({
      Id: 'RemoveExpiredDeleteMarkers',
      Status: 'Enabled',
      ExpiredObjectDeleteMarker: true,
    });
    expect(rules(production.bucket)).toHaveLength(3);
  });

  test('storage class and transition day are configurable; NONE keeps S3 Standard', () => {
    const infrequent = synth({ archiveStorageClass: 'STANDARD_IA', archiveAfterDays: 120, retentionDays: 400 });
    expect(rule(infrequent.bucket, 'ArchiveThenExpire')).toMatchObject({
      Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 120 }],
      ExpirationInDays: 400,
    });
    const glacier = synth({ archiveStorageClass: 'GLACIER' });
    expect(rule(glacier.bucket, 'ArchiveThenExpire').Transitions).toEqual([{ StorageClass: 'GLACIER', TransitionInDays: 90 }]);
    const standard = synth({ archiveStorageClass: 'NONE', retentionDays: 30, objectLockMode: 'COMPLIANCE' });
    expect(rule(standard.bucket, 'ArchiveThenExpire').Transitions).toBeUndefined();
    expect(rule(standard.bucket, 'ArchiveThenExpire').ExpirationInDays).toBe(30);
  });

  test('with a lock, versions go a day after becoming noncurrent; without one, a full retention later', () => {
    expect(rule(compliance.bucket, 'ArchiveThenExpire').NoncurrentVersionExpiration).toEqual({ NoncurrentDays: 1 });
    expect(rule(governance.bucket, 'ArchiveThenExpire').NoncurrentVersionExpiration).toEqual({ NoncurrentDays: 1 });
    const off = synth({ objectLockMode: 'OFF', retentionDays: 500 });
    expect(rule(off.bucket, 'ArchiveThenExpire').NoncurrentVersionExpiration).toEqual({ NoncurrentDays: 500 });
  });

  test('the access-log bucket keeps its logs for the retention period too', () => {
    const long = synth({ retentionDays: 730 });
    expect(long.accessLogBucket.Properties.LifecycleConfiguration.Rules).toEqual([
      { Id: 'AbortIncompleteUploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
      { Id: 'ExpireAfterRetention', Status: 'Enabled', ExpirationInDays: 730 },
    ]);
  });
});

describe('bucket policy', () => {
  test('every variant keeps exactly these statements: TLS only, TLS 1.2+, deletion and lock denials', () => {
    for (const variant of [production, compliance, governance, offRetained, lab]) {
      const denies = variant.statements.filter((statement) => statement.Effect === 'Deny');
      expect(denies.map((statement) => statement.Sid ?? statement.Condition)).toEqual([
        { Bool: { 'aws:SecureTransport': 'false' } },
        { NumericLessThan: { 's3:TlsVersion': 1.2 } },
        EVIDENCE_POLICY_SIDS.deletion,
        EVIDENCE_POLICY_SIDS.locks,
      ]);
    }
  });

  test('deletion and lock denials apply to every principal on every object', () => {
    for (const variant of [production, compliance, governance, offRetained, lab]) {
      for (const [sid, actions] of [
        [EVIDENCE_POLICY_SIDS.deletion, DELETE_ACTIONS],
        [EVIDENCE_POLICY_SIDS.locks, LOCK_ACTIONS],
      ] as const) {
        expect(variant.sid(sid)).toMatchObject({
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: actions,
          Resource: objectsOf(variant.bucketId),
        });
      }
    }
  });

  test('without an admin role nobody is exempt: deleting or unlocking needs a policy change first', () => {
    expect(production.sid(EVIDENCE_POLICY_SIDS.deletion).Condition).toBeUndefined();
    expect(production.sid(EVIDENCE_POLICY_SIDS.locks).Condition).toBeUndefined();
  });

  test('COMPLIANCE: the admin may manage holds and extend retention, but never delete or bypass', () => {
    expect(compliance.sid(EVIDENCE_POLICY_SIDS.deletion).Condition).toBeUndefined();
    expect(compliance.sid(EVIDENCE_POLICY_SIDS.locks).Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': [ADMIN_ROLE] },
    });
  });

  test('GOVERNANCE and OFF: the admin alone may also bypass governance retention and delete (the purge path)', () => {
    for (const variant of [governance, offRetained]) {
      for (const sid of [EVIDENCE_POLICY_SIDS.deletion, EVIDENCE_POLICY_SIDS.locks]) {
        expect(variant.sid(sid).Condition).toEqual({ ArnNotEquals: { 'aws:PrincipalArn': [ADMIN_ROLE] } });
      }
    }
  });

  test('lab: only the auto-delete custom resource may delete, so `cdk destroy` empties the bucket', () => {
    const providerRoles = resourcesOfType(lab.template, 'AWS::IAM::Role')
      .map(([id]) => id)
      .filter((id) => id.startsWith('CustomS3AutoDeleteObjectsCustomResourceProviderRole'));
    expect(providerRoles).toHaveLength(1);
    expect(lab.sid(EVIDENCE_POLICY_SIDS.deletion).Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': [{ 'Fn::GetAtt': [providerRoles[0], 'Arn'] }] },
    });
    expect(lab.sid(EVIDENCE_POLICY_SIDS.locks).Condition).toBeUndefined();
    // The same role is the one the auto-delete statement allows to delete.
    expect(lab.statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { AWS: { 'Fn::GetAtt': [providerRoles[0], 'Arn'] } },
        Action: expect.arrayContaining(['s3:DeleteObject*']),
      }),
    );
  });

  test('no statement relies on an invented checksum condition key', () => {
    // S3 has no condition key for x-amz-checksum-* headers; a Null test on one would deny every upload.
    for (const variant of [production, compliance, lab]) {
      expect(JSON.stringify(variant.statements)).not.toMatch(/checksum/i);
    }
  });

  test('the downloader may still upload: no denial covers s3:PutObject except the TLS rules', () => {
    for (const variant of [production, compliance, governance, lab]) {
      const putDenials = variant.statements.filter(
        (statement) =>
          statement.Effect === 'Deny' &&
          (Array.isArray(statement.Action) ? statement.Action : [statement.Action]).some((action) => action === 's3:PutObject' || action === 's3:*'),
      );
      expect(putDenials.map((statement) => Object.keys(statement.Condition))).toEqual([['Bool'], ['NumericLessThan']]);
    }
  });
});

describe('validation', () => {
  test.each([
    [{ objectLockMode: 'COMPLIANCE', retainData: false }, /objectLockMode COMPLIANCE needs retainData=true/],
    [{ objectLockMode: 'GOVERNANCE', retainData: false }, /objectLockMode GOVERNANCE needs retainData=true/],
    [{ objectLockMode: 'WORM' }, /objectLockMode must be one of COMPLIANCE, GOVERNANCE, OFF; got WORM/],
    [{ retentionDays: 0 }, /retentionDays must be a whole number of days from 1 to 36500; got 0/],
    [{ retentionDays: 365.5 }, /retentionDays must be a whole number/],
    [{ retentionDays: 36501 }, /retentionDays must be a whole number/],
    [{ archiveAfterDays: 89 }, /archiveAfterDays must be a whole number of at least 90 .*; got 89/],
    [{ retentionDays: 90 }, /archiveAfterDays \(90\) must be less than retentionDays \(90\)/],
    [{ archiveStorageClass: 'ONEZONE_IA' }, /archiveStorageClass must be one of GLACIER_IR, STANDARD_IA, GLACIER, DEEP_ARCHIVE, NONE/],
    [{ retentionAdminRoleArn: 'arn:aws:iam::111111111111:user/alice' }, /retentionAdminRoleArn must be an IAM role ARN/],
  ] as Array<[Record<string, unknown>, RegExp]>)('%j is refused', (props, message) => {
    expect(() => synthPipeline(props as BackupPipelineProps, { bundle: false })).toThrow(message);
  });

  test('a short retention without archiving is accepted (e.g. a lab keeping 30 days)', () => {
    expect(() => synth({ retentionDays: 30, archiveStorageClass: 'NONE', retainData: false })).not.toThrow();
  });
});

test('cfn-lint: no errors, and no warnings but CDK-generated redundant DependsOn, in the WORM variants', () => {
  const stacks = [production, compliance, governance, offRetained, lab].map((variant) => variant.stack);
  const result = cfnLint(synthesizedTemplateFiles(stacks));
  // W3005: CDK adds DependsOn on a function's role that its GetAtt already implies.
  const warnings = result.warnings.filter((warning) => warning.Rule.Id !== 'W3005');
  expect(formatCfnLintMatches([...result.errors, ...warnings])).toBe('');
});
