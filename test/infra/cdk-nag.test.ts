/**
 * cdk-nag AwsSolutions over every stack createStacks returns (stacks added there later are covered
 * without touching this file), in the lab shape and in the production-minded shape.
 */
import { acknowledgementsUnder, formatNagFindings, unacknowledgedNagFindings } from '../helpers/cdk-nag';
import { buildTestApp, stacksOf } from '../helpers/test-app';

const shapes: Array<[string, Record<string, unknown>]> = [
  ['lab defaults', {}],
  ['production-minded with SSH', { destroyLabDataOnTeardown: false, sshCidr: '198.51.100.0/24', keyPairName: 'ops' }],
];

describe.each(shapes)('AwsSolutions: %s', (_name, rawConfig) => {
  const { app, stacks } = buildTestApp(rawConfig);

  test('every stack of the app is checked and has no unacknowledged finding', () => {
    const checked = stacksOf(stacks);
    expect(checked.map((stack) => stack.stackName)).toEqual(expect.arrayContaining(['AuditLab-Network', 'AuditLab-Database', 'AuditLab-LabHost']));
    expect(formatNagFindings(unacknowledgedNagFindings(checked))).toBe('');
  });

  test('every cdk-nag acknowledgement names one rule on one resource and says why', () => {
    // CDK's own constructs acknowledge some of its CloudFormation-Validate rules; those are not ours.
    const acknowledgements = acknowledgementsUnder(app).filter((ack) => ack.id.startsWith('AwsSolutions-'));
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const { path, id, reason } of acknowledgements) {
      // Resource level: never on a whole stack or the app.
      expect(path.split('/').length).toBeGreaterThan(1);
      expect(id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(reason.length).toBeGreaterThan(60);
    }
  });
});

test('deletion protection is only acknowledged where the lab asks for it', () => {
  const ids = (raw: Record<string, unknown>): string[] => acknowledgementsUnder(buildTestApp(raw).app).map((ack) => ack.id);
  expect(ids({})).toContain('AwsSolutions-RDS10');
  expect(ids({ destroyLabDataOnTeardown: false })).not.toContain('AwsSolutions-RDS10');
});
