import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { AUDIT_EVENTS, ConfigError, DEFAULT_CONFIG, SUPPORTED_AURORA_VERSIONS, parseConfig } from '../../lib/config';
import { PROJECT_ROOT } from '../helpers/test-app';

function configError(raw: Record<string, unknown>): ConfigError {
  try {
    parseConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

describe('parseConfig defaults', () => {
  test('no context gives the documented lab defaults', () => {
    expect(parseConfig({})).toEqual({
      stackPrefix: 'AuditLab',
      auroraEngineVersion: '8.0.mysql_aurora.3.10.4',
      dbInstanceClass: 'db.t4g.medium',
      auditEvents: ['CONNECT', 'QUERY', 'QUERY_DCL', 'QUERY_DDL', 'QUERY_DML', 'TABLE'],
      labInstanceType: 't4g.micro',
      destroyLabDataOnTeardown: true,
      pipeline: {
        scheduleRateMinutes: 15,
        includeInstances: [],
        excludeInstances: [],
        retainPipelineData: true,
        downloaderReservedConcurrency: 2,
        logRetentionDays: 30,
        retentionDays: 365,
        archiveStorageClass: 'GLACIER_IR',
        archiveAfterDays: 90,
        backupLagAlarmMinutes: 120,
      },
    });
  });

  test('evidence and alarm settings parse from -c strings', () => {
    const { pipeline } = parseConfig({
      'pipeline.objectLockMode': 'COMPLIANCE',
      'pipeline.retentionDays': '2555',
      'pipeline.archiveStorageClass': 'DEEP_ARCHIVE',
      'pipeline.archiveAfterDays': '180',
      'pipeline.retentionAdminRoleArn': 'arn:aws:iam::123456789012:role/evidence-admin',
      'pipeline.alarmEmail': 'soc@example.com',
      'pipeline.backupLagAlarmMinutes': '45',
    });
    expect(pipeline).toMatchObject({
      objectLockMode: 'COMPLIANCE',
      retentionDays: 2555,
      archiveStorageClass: 'DEEP_ARCHIVE',
      archiveAfterDays: 180,
      retentionAdminRoleArn: 'arn:aws:iam::123456789012:role/evidence-admin',
      alarmEmail: 'soc@example.com',
      backupLagAlarmMinutes: 45,
    });
    expect(parseConfig({ 'pipeline.alarmEmail': '' }).pipeline.alarmEmail).toBeUndefined();
  });

  test('the default engine version is one the validator accepts', () => {
    expect(SUPPORTED_AURORA_VERSIONS).toContain(DEFAULT_CONFIG.auroraEngineVersion.replace('8.0.mysql_aurora.', ''));
  });

  test('retired Aurora minor lines are not offered, current ones are', () => {
    expect(SUPPORTED_AURORA_VERSIONS).not.toContain('3.07.1');
    expect(SUPPORTED_AURORA_VERSIONS).not.toContain('3.02.0');
    expect(SUPPORTED_AURORA_VERSIONS).toEqual(expect.arrayContaining(['3.04.4', '3.10.4']));
    expect(SUPPORTED_AURORA_VERSIONS.every((version) => /^3\.\d{2}\.\d+$/.test(version))).toBe(true);
  });
});

describe('parseConfig accepts strings from -c and JSON from cdk.json', () => {
  test('string forms', () => {
    const config = parseConfig({
      stackPrefix: 'My-Lab2',
      auroraEngineVersion: '3.08.2',
      dbInstanceClass: 'db.r7g.large',
      auditEvents: 'CONNECT,QUERY_DDL',
      labInstanceType: 'm7g.medium',
      sshCidr: '203.0.113.0/24',
      keyPairName: 'lab key',
      destroyLabDataOnTeardown: 'false',
      'pipeline.scheduleRateMinutes': '5',
      'pipeline.includeInstances': 'auditlab-writer,auditlab-reader',
      'pipeline.excludeInstances': '',
      'pipeline.retainPipelineData': 'false',
      'pipeline.downloaderReservedConcurrency': '4',
      'pipeline.logRetentionDays': '90',
    });
    expect(config).toEqual({
      stackPrefix: 'My-Lab2',
      auroraEngineVersion: '8.0.mysql_aurora.3.08.2',
      dbInstanceClass: 'db.r7g.large',
      auditEvents: ['CONNECT', 'QUERY_DDL'],
      labInstanceType: 'm7g.medium',
      ssh: { cidr: '203.0.113.0/24', keyPairName: 'lab key' },
      destroyLabDataOnTeardown: false,
      pipeline: {
        scheduleRateMinutes: 5,
        includeInstances: ['auditlab-writer', 'auditlab-reader'],
        excludeInstances: [],
        retainPipelineData: false,
        downloaderReservedConcurrency: 4,
        logRetentionDays: 90,
        retentionDays: 365,
        archiveStorageClass: 'GLACIER_IR',
        archiveAfterDays: 90,
        backupLagAlarmMinutes: 120,
      },
    });
  });

  test('JSON forms, including the full engine version and a pipeline object', () => {
    const config = parseConfig({
      auroraEngineVersion: '8.0.mysql_aurora.3.12.0',
      auditEvents: ['TABLE', 'CONNECT'],
      destroyLabDataOnTeardown: true,
      pipeline: { scheduleRateMinutes: 60, excludeInstances: ['scratch-db'], logRetentionDays: 7 },
    });
    expect(config.auroraEngineVersion).toBe('8.0.mysql_aurora.3.12.0');
    expect(config.auditEvents).toEqual(['TABLE', 'CONNECT']);
    expect(config.pipeline).toMatchObject({ scheduleRateMinutes: 60, excludeInstances: ['scratch-db'], logRetentionDays: 7 });
  });

  test('the pipeline section may be a JSON string, and flat pipeline.<key> values win over it', () => {
    const config = parseConfig({
      pipeline: '{"scheduleRateMinutes": 30, "downloaderReservedConcurrency": 3}',
      'pipeline.scheduleRateMinutes': '10',
    });
    expect(config.pipeline.scheduleRateMinutes).toBe(10);
    expect(config.pipeline.downloaderReservedConcurrency).toBe(3);
  });

  test('"none" reserves no downloader concurrency, flat or in the section', () => {
    expect(parseConfig({}).pipeline.downloaderReservedConcurrency).toBe(2);
    expect(parseConfig({ 'pipeline.downloaderReservedConcurrency': 'none' }).pipeline.downloaderReservedConcurrency).toBeUndefined();
    expect(parseConfig({ pipeline: { downloaderReservedConcurrency: 'none' } }).pipeline.downloaderReservedConcurrency).toBeUndefined();
    // A flat number still wins over the section's "none".
    const flatWins = parseConfig({ pipeline: { downloaderReservedConcurrency: 'none' }, 'pipeline.downloaderReservedConcurrency': '5' });
    expect(flatWins.pipeline.downloaderReservedConcurrency).toBe(5);
  });

  test('every documented audit event is accepted', () => {
    expect(parseConfig({ auditEvents: AUDIT_EVENTS.join(',') }).auditEvents).toEqual([...AUDIT_EVENTS]);
  });
});

describe('parseConfig rejects bad values, naming the key and the accepted values', () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['stackPrefix with a double hyphen', { stackPrefix: 'audit--lab' }, 'stackPrefix', /letters, digits or single hyphens/],
    ['stackPrefix starting with a digit', { stackPrefix: '1lab' }, 'stackPrefix', /starting with a letter/],
    ['stackPrefix too long', { stackPrefix: 'A'.repeat(33) }, 'stackPrefix', /1 to 32/],
    ['an unknown engine version', { auroraEngineVersion: '3.99.0' }, 'auroraEngineVersion', /3\.10\.4/],
    ['a retired engine version', { auroraEngineVersion: '8.0.mysql_aurora.3.05.2' }, 'auroraEngineVersion', /3\.04\.4, /],
    ['an Aurora MySQL 2 version', { auroraEngineVersion: '2.12.1' }, 'auroraEngineVersion', /3\.12\.0/],
    ['an instance class without db.', { dbInstanceClass: 't4g.medium' }, 'dbInstanceClass', /db\.t4g\.medium/],
    ['a burstable class too big', { dbInstanceClass: 'db.t4g.xlarge' }, 'dbInstanceClass', /medium or large only/],
    ['an unknown instance family', { dbInstanceClass: 'db.m5.large' }, 'dbInstanceClass', /t3, t4g, r5/],
    ['lower-case audit events', { auditEvents: 'connect,QUERY' }, 'auditEvents', /CONNECT, QUERY, QUERY_DCL/],
    ['audit events with spaces', { auditEvents: 'CONNECT, QUERY' }, 'auditEvents', /no spaces/],
    ['an undocumented audit event', { auditEvents: 'CONNECT,QUERY_DML_NO_SELECT' }, 'auditEvents', /QUERY_DML, TABLE/],
    ['duplicate audit events', { auditEvents: 'CONNECT,QUERY,CONNECT' }, 'auditEvents', /no duplicates/],
    ['no audit events', { auditEvents: '' }, 'auditEvents', /non-empty/],
    ['an x86 lab instance type', { labInstanceType: 't3.micro' }, 'labInstanceType', /arm64 \(Graviton\)/],
    ['a malformed lab instance type', { labInstanceType: 'micro' }, 'labInstanceType', /t4g\.micro/],
    ['a CIDR open to the world', { sshCidr: '0.0.0.0/0', keyPairName: 'k' }, 'sshCidr', /prefix length of 1 to 32/],
    ['a CIDR with host bits', { sshCidr: '198.51.100.7/24', keyPairName: 'k' }, 'sshCidr', /198\.51\.100\.0\/24/],
    ['a CIDR with a bad octet', { sshCidr: '198.51.100.256/32', keyPairName: 'k' }, 'sshCidr', /IPv4 network in CIDR notation/],
    ['an IPv6 CIDR', { sshCidr: '2001:db8::/32', keyPairName: 'k' }, 'sshCidr', /IPv4 network in CIDR notation/],
    ['sshCidr without a key pair', { sshCidr: '203.0.113.7/32' }, 'sshCidr"/"keyPairName', /both or neither/],
    ['a key pair without sshCidr', { keyPairName: 'k' }, 'sshCidr"/"keyPairName', /both unset/],
    ['a non-boolean teardown flag', { destroyLabDataOnTeardown: 'yes' }, 'destroyLabDataOnTeardown', /true, false/],
    ['a schedule of zero minutes', { 'pipeline.scheduleRateMinutes': '0' }, 'pipeline.scheduleRateMinutes', /1 to 1440/],
    ['a schedule over a day', { pipeline: { scheduleRateMinutes: 1441 } }, 'pipeline.scheduleRateMinutes', /1 to 1440/],
    ['a fractional schedule', { 'pipeline.scheduleRateMinutes': '2.5' }, 'pipeline.scheduleRateMinutes', /an integer/],
    ['an upper-case instance id', { 'pipeline.includeInstances': 'AuditLab-Writer' }, 'pipeline.includeInstances', /lower-case letters/],
    ['an instance id ending in a hyphen', { 'pipeline.excludeInstances': 'db-' }, 'pipeline.excludeInstances', /single hyphens/],
    ['an instance in both lists', { pipeline: { includeInstances: ['a'], excludeInstances: ['a'] } }, 'pipeline.includeInstances"/"pipeline.excludeInstances', /disjoint/],
    ['a non-boolean retain flag', { pipeline: { retainPipelineData: 1 } }, 'pipeline.retainPipelineData', /true, false/],
    ['no downloader concurrency', { 'pipeline.downloaderReservedConcurrency': '0' }, 'pipeline.downloaderReservedConcurrency', /1 to 100, or "none"/],
    ['"None" for no reservation', { 'pipeline.downloaderReservedConcurrency': 'None' }, 'pipeline.downloaderReservedConcurrency', /or "none" \(nothing reserved\)/],
    ['an invalid log retention', { 'pipeline.logRetentionDays': '10' }, 'pipeline.logRetentionDays', /1, 3, 5, 7, 14, 30/],
    ['an unknown pipeline key', { pipeline: { schedule: 5 } }, 'pipeline', /scheduleRateMinutes, includeInstances/],
    ['a pipeline section that is not JSON', { pipeline: '{schedule' }, 'pipeline', /an object with keys/],
    ['an unknown object lock mode', { 'pipeline.objectLockMode': 'compliance' }, 'pipeline.objectLockMode', /COMPLIANCE, GOVERNANCE, OFF/],
    ['a retention of zero days', { 'pipeline.retentionDays': '0' }, 'pipeline.retentionDays', /1 to 36500/],
    ['an unknown archive class', { 'pipeline.archiveStorageClass': 'ONEZONE' }, 'pipeline.archiveStorageClass', /GLACIER_IR, STANDARD_IA/],
    ['archiving before 90 days', { 'pipeline.archiveAfterDays': '30' }, 'pipeline.archiveAfterDays', /90 to 36500/],
    ['a user ARN as admin role', { 'pipeline.retentionAdminRoleArn': 'arn:aws:iam::123456789012:user/bob' }, 'pipeline.retentionAdminRoleArn', /role\/<name>/],
    ['a malformed alarm email', { 'pipeline.alarmEmail': 'soc@' }, 'pipeline.alarmEmail', /name@example\.com/],
    ['a lag alarm of a day', { 'pipeline.backupLagAlarmMinutes': '1440' }, 'pipeline.backupLagAlarmMinutes', /1 to 1439/],
    [
      'a locked bucket the teardown must empty',
      { pipeline: { objectLockMode: 'COMPLIANCE', retainPipelineData: false } },
      'pipeline.objectLockMode"/"pipeline.retentionDays"/"pipeline.archiveAfterDays"/"pipeline.retainPipelineData',
      /objectLockMode OFF when retainPipelineData is false/,
    ],
    [
      'archiving after the objects expire',
      { pipeline: { retentionDays: 90, archiveAfterDays: 90 } },
      'pipeline.objectLockMode"/"pipeline.retentionDays"/"pipeline.archiveAfterDays"/"pipeline.retainPipelineData',
      /must be less than retentionDays/,
    ],
  ];

  test.each(cases)('%s', (_name, raw, key, accepted) => {
    const error = configError(raw);
    expect(error.problems).toHaveLength(1);
    const [message] = error.problems;
    expect(message.startsWith(`"${key}": `)).toBe(true);
    expect(message).toContain('Accepted values: ');
    expect(message).toMatch(accepted);
  });

  test('every bad key is reported at once', () => {
    const error = configError({ stackPrefix: '-', auditEvents: 'nope', labInstanceType: 'c5.large' });
    expect(error.problems.map((problem) => problem.split(':')[0])).toEqual([
      '"stackPrefix"',
      '"auditEvents"',
      '"labInstanceType"',
    ]);
    expect(error.message).toContain('Invalid configuration (CDK context)');
  });
});

describe('bin/app.ts', () => {
  test('refuses bad context before building anything, with the validator message and exit status 1', () => {
    // CDK_CONTEXT_JSON is how the CDK CLI hands context to the app process.
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'bin', 'app.ts')], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ auditEvents: 'connect' }) },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('"auditEvents": "connect" is not a documented audit event');
    expect(run.stderr).toContain('Accepted values: ');
  });
});
