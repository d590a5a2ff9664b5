import { parseOptions } from '../../scripts/bench/bench';
import { UsageError } from '../../scripts/cli/args';

function options(...argv: string[]) {
  const parsed = parseOptions(argv);
  if (parsed === 'help') throw new Error('unexpected help');
  return parsed;
}

describe('bench options', () => {
  test('the endpoint answers as fast as it can unless told to add latency', () => {
    expect(options().endpointLatencyMs).toBe(0);
    expect(options('--endpoint-latency-ms', '0').endpointLatencyMs).toBe(0);
    expect(options('--endpoint-latency-ms', '50').endpointLatencyMs).toBe(50);
  });

  test.each(['-1', '1.5', '', 'abc'])('--endpoint-latency-ms %p is refused with the option named', (raw) => {
    // The = form: parseArgs would take a separate "-1" for an option.
    expect(() => parseOptions([`--endpoint-latency-ms=${raw}`])).toThrow(UsageError);
    expect(() => parseOptions([`--endpoint-latency-ms=${raw}`])).toThrow(/--endpoint-latency-ms must be a whole number, 0 or more/);
  });

  test("the rotate size is server_audit's minimum or more", () => {
    expect(options('--rotate-size', '100').rotateSize).toBe(100);
    expect(() => parseOptions(['--rotate-size', '99'])).toThrow(/--rotate-size must be at least 100 bytes/);
  });

  test('run counts must be whole positive numbers', () => {
    expect(options('--throughput-runs', '5').throughputRuns).toBe(5);
    expect(() => parseOptions(['--throughput-runs', '0.4'])).toThrow(/--throughput-runs must be a whole number/);
    expect(() => parseOptions(['--init-runs', '0'])).toThrow(/--init-runs must be a positive number/);
  });
});
