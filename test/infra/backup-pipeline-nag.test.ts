/**
 * cdk-nag (AwsSolutions) over the pipeline stack in the shapes it is deployed in. The app-wide nag and
 * cfn-lint checks cover the stack as bin/ wires it; this file also covers the shapes bin/ may not use
 * (environment-agnostic, and the lab's destroy-everything variant whose bucket auto-delete adds a CDK
 * custom resource), so an acknowledgement that only matches one shape cannot hide behind another.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BackupPipelineProps } from '../../lib/constructs/backup-pipeline';
import { BackupPipelineStack } from '../../lib/stacks/backup-pipeline-stack';
import { appContext, TEST_ENV } from '../helpers/pipeline-template';

/** The parts of CDK's policy validation report (`validation-report.json`) this test reads. */
interface ViolationReport {
  pluginReports: Array<{
    violations: Array<{ ruleName: string; violatingConstructs: Array<{ constructPath: string }> }>;
  }>;
}

/** Synthesizes with cdk-nag and returns every unacknowledged finding as `rule @ construct path`. */
function nagFindings(pipeline: BackupPipelineProps, env: Environment | undefined): string[] {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-nag-'));
  try {
    // Findings do not depend on bundle contents: skip esbuild.
    const app = new App({ outdir, context: { ...appContext(), 'aws:cdk:bundling-stacks': [] } });
    new BackupPipelineStack(app, 'BackupPipeline', { env, pipeline });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    try {
      app.synth();
      return [];
    } catch (error) {
      const reportFile = path.join(outdir, 'validation-report.json');
      if (!fs.existsSync(reportFile)) throw error;
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ViolationReport;
      const findings = report.pluginReports.flatMap((plugin) =>
        plugin.violations.flatMap((violation) =>
          violation.violatingConstructs.map((construct) => `${violation.ruleName} @ ${construct.constructPath}`),
        ),
      );
      if (findings.length === 0) throw error;
      return findings;
    }
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

test.each([
  ['production defaults, concrete environment', {}, TEST_ENV],
  ['production defaults, environment-agnostic', {}, undefined],
  ['lab: retainData=false, reserved concurrency', { retainData: false, downloaderReservedConcurrency: 2 }, TEST_ENV],
  [
    'COMPLIANCE lock, retention admin, alarm email',
    { objectLockMode: 'COMPLIANCE', retentionAdminRoleArn: 'arn:aws:iam::111111111111:role/audit-retention-admin', alarmEmail: 'ops@example.com' },
    TEST_ENV,
  ],
  ['OFF lock with data retained, no archive tier', { objectLockMode: 'OFF', archiveStorageClass: 'NONE' }, undefined],
] as Array<[string, BackupPipelineProps, Environment | undefined]>)('AwsSolutions clean: %s', (_name, props, env) => {
  expect(nagFindings(props, env)).toEqual([]);
});
