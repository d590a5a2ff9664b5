/**
 * Synthesis and template-query helpers for the BackupPipelineStack tests. Synthesis bundles three
 * functions with esbuild, so each test file synthesizes once (at module level) and queries the result.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Environment } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { BackupPipelineProps, PIPELINE_SERVICE_NAMES } from '../../lib/constructs/backup-pipeline';
import { BackupPipelineStack } from '../../lib/stacks/backup-pipeline-stack';

export const TEST_ENV = { account: '111111111111', region: 'eu-west-1' } as const satisfies Environment;

/** The app's own feature flags, so tests synthesize what `cdk synth` would. */
export function appContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

export interface SynthesizedPipeline {
  app: App;
  stack: BackupPipelineStack;
  template: Template;
  /** Cloud assembly directory (bundled assets live in `asset.<hash>/`). */
  assemblyDir: string;
}

export interface SynthOptions {
  /** @default TEST_ENV; `null` for an environment-agnostic stack */
  env?: Environment | null;
  /**
   * Run esbuild for the functions. Without it CDK stages placeholder assets: the template is the same
   * except for asset hashes, and synthesis takes milliseconds instead of seconds.
   * @default true
   */
  bundle?: boolean;
}

export function synthPipeline(pipeline?: BackupPipelineProps, options: SynthOptions = {}): SynthesizedPipeline {
  const env = options.env === null ? undefined : (options.env ?? TEST_ENV);
  const context = { ...appContext(), ...(options.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}) };
  const app = new App({ context });
  const stack = new BackupPipelineStack(app, 'BackupPipeline', { env, pipeline });
  const template = Template.fromStack(stack);
  return { app, stack, template, assemblyDir: app.synth().directory };
}

type CfnResource = { Type: string; Properties?: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
export type PolicyStatementJson = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

export function resourcesOfType(template: Template, type: string): Array<[string, CfnResource]> {
  return Object.entries(template.findResources(type) as Record<string, CfnResource>);
}

export function onlyResource(template: Template, type: string, props?: object): [string, CfnResource] {
  const found = Object.entries(template.findResources(type, props) as Record<string, CfnResource>);
  if (found.length !== 1) throw new Error(`expected exactly one ${type} matching, found ${found.length}`);
  return found[0];
}

export type PipelineFunctionName = keyof typeof PIPELINE_SERVICE_NAMES;

/** A pipeline function, found by its Powertools service name. */
export function pipelineFunction(template: Template, name: PipelineFunctionName): [string, CfnResource] {
  const matches = resourcesOfType(template, 'AWS::Lambda::Function').filter(
    ([, fn]) => fn.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === PIPELINE_SERVICE_NAMES[name],
  );
  if (matches.length !== 1) throw new Error(`expected one ${name} function, found ${matches.length}`);
  return matches[0];
}

/** Logical id of a resource referenced as { Ref } or { Fn::GetAtt: [id, attr] }. */
export function referencedId(value: unknown): string {
  const ref = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  if (ref.Ref) return ref.Ref;
  if (ref['Fn::GetAtt']) return ref['Fn::GetAtt'][0];
  throw new Error(`not a reference: ${JSON.stringify(value)}`);
}

/** Every statement of every identity policy (inline or AWS::IAM::Policy) attached to a role. */
export function roleStatements(template: Template, roleId: string): PolicyStatementJson[] {
  const role = template.toJSON().Resources[roleId] as CfnResource;
  const inline = (role.Properties?.Policies ?? []).flatMap(
    (policy: { PolicyDocument: { Statement: PolicyStatementJson[] } }) => policy.PolicyDocument.Statement,
  );
  const attached = resourcesOfType(template, 'AWS::IAM::Policy')
    .filter(([, policy]) => (policy.Properties?.Roles ?? []).some((r: unknown) => referencedId(r) === roleId))
    .flatMap(([, policy]) => policy.Properties!.PolicyDocument.Statement as PolicyStatementJson[]);
  return [...inline, ...attached];
}

export function actionsOf(statements: PolicyStatementJson[]): string[] {
  return [...new Set(statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])))].sort();
}

export function statementsWithAction(statements: PolicyStatementJson[], action: string): PolicyStatementJson[] {
  return statements.filter((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]).includes(action));
}

/** Bundled asset directory of a function (`Code.S3Key` is `<hash>.zip`). */
export function functionAssetDir(assemblyDir: string, fn: CfnResource): string {
  const key = fn.Properties?.Code?.S3Key as string;
  return path.join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`);
}
