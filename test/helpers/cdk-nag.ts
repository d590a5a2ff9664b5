/**
 * cdk-nag (3.x) AwsSolutions checks over stacks, returning every finding nobody acknowledged.
 *
 * cdk-nag 3 is a CDK policy-validation plugin (`Validations.of(app).addPlugins(new AwsSolutionsChecks(app))`);
 * its `validateScope` is the documented entry point for tests and runs the same rules. The app is
 * synthesized first so that aspects, cross-stack references and construct validations (which may record
 * acknowledgements) have run exactly as in `cdk synth`.
 */
import { Stage, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

export interface NagFinding {
  readonly stack: string;
  readonly rule: string;
  readonly path: string;
  readonly description: string;
}

export function unacknowledgedNagFindings(stacks: readonly Stack[]): NagFinding[] {
  const stages = new Set(stacks.map((stack) => Stage.of(stack)));
  for (const stage of stages) stage?.synth();
  const checks = new AwsSolutionsChecks();
  return stacks.flatMap((stack) =>
    checks.validateScope(stack).violations.flatMap((violation) =>
      violation.violatingResources.map((resource) => ({
        stack: stack.stackName,
        rule: violation.ruleName,
        // cdk-nag reports the construct path; the CDK type only declares the logical ID.
        path: (resource as { constructPath?: string }).constructPath ?? resource.resourceLogicalId ?? '?',
        description: violation.description,
      })),
    ),
  );
}

export function formatNagFindings(findings: readonly NagFinding[]): string {
  return findings.map((finding) => `${finding.rule} at ${finding.path}: ${finding.description}`).join('\n');
}

export interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement recorded with `Validations.of(...).acknowledge` under a scope. */
export function acknowledgementsUnder(scope: IConstruct): Acknowledgement[] {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}
