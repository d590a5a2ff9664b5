import { parseLabOptions } from '../../scripts/local-lab/lab';
import { UsageError } from '../../scripts/cli/args';

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

describe('npm run lab number options', () => {
  it('refuses fractional counts that sysbench and MariaDB would reject later, naming the option', () => {
    expect(parseLabOptions(['--threads', '4', '--rotate-size', '500000'])).toMatchObject({ threads: 4, rotateSize: 500_000 });
    expect(() => parseLabOptions(['--threads', '2.5'])).toThrow('--threads must be a whole number, got "2.5"');
    expect(() => parseLabOptions(['--table-size', '0'])).toThrow('--table-size must be a positive number, got "0"');
    expect(() => parseLabOptions(['--rotations', '1.5'])).toThrow('--rotations must be a whole number, got "1.5"');
  });

  it("refuses a rotate size below server_audit's minimum, which MariaDB would quietly raise to 100", () => {
    expect(parseLabOptions(['--rotate-size', '100'])).toMatchObject({ rotateSize: 100 });
    expect(() => parseLabOptions(['--rotate-size', '10'])).toThrow("--rotate-size must be at least 100 bytes (server_audit's minimum), got 10");
  });

  it('takes --timeout budgets as whole milliseconds above 0, naming the function', () => {
    expect(parseLabOptions(['--timeout', 'downloader=2500'])).toMatchObject({ timeouts: { downloader: 2500 } });
    expect(() => parseLabOptions(['--timeout', 'downloader=0'])).toThrow('--timeout downloader must be a positive number, got "0"');
    expect(() => parseLabOptions(['--timeout', 'detector=1.5'])).toThrow('--timeout detector must be a whole number, got "1.5"');
    expect(() => parseLabOptions(['--timeout', 'scanner=soon'])).toThrow(UsageError);
    expect(() => parseLabOptions(['--timeout', 'downloader'])).toThrow('--timeout takes ROLE=MS, got "downloader"');
  });

  it('refuses an endpoint that is not an http(s) URL before anything starts, from the option or the environment', () => {
    expect(parseLabOptions(['--rds-endpoint', 'http://127.0.0.1:4599'])).toMatchObject({ rdsEndpointUrl: 'http://127.0.0.1:4599' });
    expect(() => parseLabOptions(['--rds-endpoint', 'notaurl'])).toThrow('--rds-endpoint must be an http:// or https:// URL, got "notaurl"');
    expect(() => parseLabOptions(['--aws-endpoint', '127.0.0.1:4566'])).toThrow(/--aws-endpoint must be an http/);
    const saved = process.env.AWS_ENDPOINT_URL_RDS;
    try {
      process.env.AWS_ENDPOINT_URL_RDS = 'localhost:4599';
      expect(() => parseLabOptions([])).toThrow('AWS_ENDPOINT_URL_RDS must be an http:// or https:// URL, got "localhost:4599"');
      // The option wins over the environment, as documented.
      expect(parseLabOptions(['--rds-endpoint', 'http://127.0.0.1:1'])).toMatchObject({ rdsEndpointUrl: 'http://127.0.0.1:1' });
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_RDS;
      else process.env.AWS_ENDPOINT_URL_RDS = saved;
    }
  });

  it('reports an unknown option as a usage error', () => {
    expect(() => parseLabOptions(['--durations', '5'])).toThrow(UsageError);
  });
});
