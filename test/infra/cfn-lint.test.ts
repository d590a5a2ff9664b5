/**
 * cfn-lint over every synthesized template: every stack createStacks returns (stacks added there later
 * are covered without touching this file) in the lab and production-minded shapes, plus the lab host
 * with an audit-log bucket. One cfn-lint run for all of them (it is a slow Python start-up).
 */
import { cfnLint, cfnLintVersion, formatCfnLintMatches, synthesizedTemplateFiles } from '../helpers/cfn-lint';
import { buildLabHostWithBucket, buildTestApp, stacksOf } from '../helpers/test-app';

const lab = stacksOf(buildTestApp().stacks);
const production = stacksOf(
  buildTestApp({ destroyLabDataOnTeardown: false, sshCidr: '198.51.100.0/24', keyPairName: 'ops' }).stacks,
);
const withBucket = buildLabHostWithBucket().host;

test('cfn-lint is installed', () => {
  expect(cfnLintVersion()).toMatch(/cfn-lint 1\./);
});

test('no cfn-lint errors in any template', () => {
  const result = cfnLint(synthesizedTemplateFiles([...lab, ...production, withBucket]));
  expect(result.templates.length).toBe(lab.length + production.length + 1);
  expect(formatCfnLintMatches(result.errors)).toBe('');
});
