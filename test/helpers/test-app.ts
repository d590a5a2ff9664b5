/**
 * Builds the CDK app for tests exactly as bin/app.ts does (createStacks + parseConfig), with cdk.json's
 * feature flags so templates match `cdk synth`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AppStacks, createStacks } from '../../lib/app-stacks';
import { parseConfig } from '../../lib/config';
import { LabHostStack } from '../../lib/stacks/lab-host-stack';

export const PROJECT_ROOT = path.join(__dirname, '..', '..');

/** The feature flags and settings cdk.json gives `cdk synth`. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8'),
).context;

export interface TestAppOptions {
  /**
   * Run the asset bundling (the lab scripts' esbuild step). Without it CDK stages the asset sources
   * unbundled: templates are identical except for asset hashes, and synthesis is faster.
   * @default false
   */
  readonly bundle?: boolean;
}

export function newTestApp(options: TestAppOptions = {}): App {
  const skipBundling = options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] };
  return new App({ context: { ...CDK_JSON_CONTEXT, ...skipBundling } });
}

export interface TestApp {
  readonly app: App;
  readonly stacks: AppStacks;
}

/** The whole app from raw config values (as context would give them; defaults for the rest). */
export function buildTestApp(rawConfig: Record<string, unknown> = {}, options: TestAppOptions = {}): TestApp {
  const app = newTestApp(options);
  return { app, stacks: createStacks(app, parseConfig(rawConfig)) };
}

export interface LabHostWithBucket {
  readonly app: App;
  readonly bucketStack: Stack;
  readonly host: LabHostStack;
}

/**
 * A LabHostStack given an audit-log bucket from another stack (KMS-encrypted, so the key grant shows),
 * the way the backup pipeline hands its bucket over.
 */
export function buildLabHostWithBucket(): LabHostWithBucket {
  const { app, stacks } = buildTestApp();
  const bucketStack = new Stack(app, 'BucketOwner');
  const bucket = new s3.Bucket(bucketStack, 'AuditLogs', { encryption: s3.BucketEncryption.KMS });
  const host = new LabHostStack(app, 'LabHostWithBucket', {
    vpc: stacks.network.vpc,
    cluster: stacks.database.cluster,
    secret: stacks.database.secret,
    databaseClientSecurityGroup: stacks.database.clientSecurityGroup,
    instanceType: 't4g.micro',
    auditLogBucket: bucket,
  });
  return { app, bucketStack, host };
}

/** Every stack in a createStacks result, whatever stacks it grows to hold. */
export function stacksOf(stacks: object): Stack[] {
  return Object.values(stacks).filter((value): value is Stack => Stack.isStack(value));
}

/** Template of one stack; the app synthesizes once and later calls reuse that assembly. */
export function templateOf(stack: Stack): Template {
  return Template.fromStack(stack);
}

/** Logical IDs of the resources of a type in a template. */
export function logicalIdsOfType(template: Template, type: string): string[] {
  return Object.keys(template.findResources(type));
}

/**
 * The template as JSON with values that legitimately change with unrelated edits replaced, for
 * snapshots: the lab host's logical ID carries a hash of its user data (which names the script
 * bundle's hash), so it changes whenever a lab script does. 64-hex asset hashes are handled by the
 * snapshot serializer.
 */
export function snapshotJson(template: Template, volatile: Record<string, string> = {}): unknown {
  let text = JSON.stringify(template.toJSON());
  for (const [value, placeholder] of Object.entries(volatile)) text = text.split(value).join(placeholder);
  return JSON.parse(text);
}
