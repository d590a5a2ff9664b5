import { parseLabOptions } from '../../scripts/local-lab/lab';

describe('npm run lab options', () => {
  it('takes the reconcile cadence in cycles (0: only the final run) and leaves the default to the service', () => {
    expect(parseLabOptions(['--reconcile-every', '3'])).toMatchObject({ reconcileEveryCycles: 3 });
    expect(parseLabOptions(['--reconcile-every', '0'])).toMatchObject({ reconcileEveryCycles: 0 });
    expect(parseLabOptions([])).not.toHaveProperty('reconcileEveryCycles');
    for (const bad of ['-1', '1.5', 'often']) expect(() => parseLabOptions(['--reconcile-every', bad])).toThrow(/--reconcile-every/);
  });

  it('lets --env and --timeout address the reconciler like the other functions', () => {
    expect(parseLabOptions(['--env', 'reconciler:STALE_CLAIM_MS=5000', '--timeout', 'reconciler=30000'])).toMatchObject({
      envOverrides: { reconciler: { STALE_CLAIM_MS: '5000' } },
      timeouts: { reconciler: 30000 },
    });
    expect(() => parseLabOptions(['--env', 'verifier:X=1'])).toThrow(/unknown function "verifier" \(scanner, detector, downloader, reconciler\)/);
  });
});
