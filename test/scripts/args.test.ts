import { httpUrl, parseOptions, positiveNumber, positiveWholeNumber, UsageError, wholeNumberFromZero } from '../../scripts/cli/args';

describe('number options shared by the commands', () => {
  test('an absent option takes its default; a given one is read as a number', () => {
    expect(positiveNumber('--duration', undefined, 60)).toBe(60);
    expect(positiveNumber('--duration', '2.5', 60)).toBe(2.5);
    expect(positiveWholeNumber('--threads', '4', 2)).toBe(4);
    expect(wholeNumberFromZero('--latency', '0', 7)).toBe(0);
    expect(wholeNumberFromZero('--latency', undefined, 7)).toBe(7);
  });

  test.each([
    ['positive number', () => positiveNumber('--duration', '0', 60), '--duration must be a positive number, got "0"'],
    ['positive number', () => positiveNumber('--duration', '', 60), '--duration must be a positive number, got ""'],
    ['positive number', () => positiveNumber('--duration', 'soon', 60), '--duration must be a positive number, got "soon"'],
    ['whole number', () => positiveWholeNumber('--threads', '2.5', 2), '--threads must be a whole number, got "2.5"'],
    ['whole number', () => positiveWholeNumber('--threads', '-3', 2), '--threads must be a positive number, got "-3"'],
    ['whole number from 0', () => wholeNumberFromZero('--latency', '-1', 0), '--latency must be a whole number, 0 or more, got "-1"'],
    ['whole number from 0', () => wholeNumberFromZero('--latency', ' ', 0), '--latency must be a whole number, 0 or more, got " "'],
  ])('a bad %s is a usage error naming the option and the value', (_kind, parse, message) => {
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(message);
  });

  test("parseArgs' own errors (unknown option, a value that looks like an option) become usage errors", () => {
    const config = { args: ['--nope'], options: { known: { type: 'string' as const } }, strict: true };
    expect(() => parseOptions(config)).toThrow(UsageError);
    expect(() => parseOptions({ ...config, args: ['--known', '-1'] })).toThrow(UsageError);
    expect(() => parseOptions({ ...config, args: ['--known', '-1'] })).toThrow(/--known=-XYZ/);
  });
});

describe('endpoint options', () => {
  test('an http(s) URL is taken as given; absent stays absent', () => {
    expect(httpUrl('--rds-endpoint', 'http://127.0.0.1:4599')).toBe('http://127.0.0.1:4599');
    expect(httpUrl('--aws-endpoint', 'https://example.test/')).toBe('https://example.test/');
    expect(httpUrl('--rds-endpoint', undefined)).toBeUndefined();
  });

  test.each(['127.0.0.1:4599', 'notaurl', 'ftp://127.0.0.1/', ''])('"%s" is a usage error naming the option', (raw) => {
    expect(() => httpUrl('--rds-endpoint', raw)).toThrow(new UsageError(`--rds-endpoint must be an http:// or https:// URL, got "${raw}"`));
  });
});
