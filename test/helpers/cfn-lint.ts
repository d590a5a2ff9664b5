/**
 * Runs cfn-lint over the synthesized templates of stacks. cfn-lint is a Python tool (this machine
 * image ships it; elsewhere `pip install cfn-lint`); its absence is an error, never a silent pass.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Stack, Stage } from 'aws-cdk-lib';

export interface CfnLintMatch {
  readonly Level: 'Error' | 'Warning' | 'Informational';
  readonly Message: string;
  readonly Filename: string;
  readonly Rule: { readonly Id: string };
  readonly Location: { readonly Path?: ReadonlyArray<string | number> };
}

export interface CfnLintResult {
  readonly templates: readonly string[];
  readonly errors: readonly CfnLintMatch[];
  readonly warnings: readonly CfnLintMatch[];
}

const CFN_LINT = 'cfn-lint';

export function cfnLintVersion(): string {
  const run = spawnSync(CFN_LINT, ['--version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new Error(
      `${CFN_LINT} is not available (${run.error?.message ?? run.stderr.trim()}); install it with ` +
        '`pip install cfn-lint` (version 1.x) and make sure it is on PATH',
    );
  }
  return run.stdout.trim();
}

/** Template files of the stacks, as written by synthesizing their app(s) to its temporary outdir. */
export function synthesizedTemplateFiles(stacks: readonly Stack[]): string[] {
  return stacks.map((stack) => {
    const assembly = Stage.of(stack)!.synth();
    return path.join(assembly.directory, assembly.getStackArtifact(stack.artifactId).templateFile);
  });
}

export function cfnLint(templates: readonly string[]): CfnLintResult {
  cfnLintVersion();
  const run = spawnSync(CFN_LINT, ['--format', 'json', '--', ...templates], { encoding: 'utf8' });
  if (run.error) throw run.error;
  // Exit status is a bit mask (2 errors, 4 warnings, 8 informational); 1 means cfn-lint itself failed.
  if (run.status === 1 || run.stdout.trim() === '') {
    throw new Error(`${CFN_LINT} failed (exit ${run.status}): ${run.stderr.trim() || run.stdout.trim()}`);
  }
  const matches = JSON.parse(run.stdout) as CfnLintMatch[];
  return {
    templates,
    errors: matches.filter((match) => match.Level === 'Error'),
    warnings: matches.filter((match) => match.Level === 'Warning'),
  };
}

export function formatCfnLintMatches(matches: readonly CfnLintMatch[]): string {
  return matches
    .map((match) => `${match.Rule.Id} ${path.basename(match.Filename)} ${(match.Location.Path ?? []).join('/')}: ${match.Message}`)
    .join('\n');
}
