import {
  compileFilters,
  InvalidFilterPatternError,
  matchesPattern,
} from '../../scripts/local-lab/runner/filter-matcher';
import { DOWNLOADER_STREAM_FILTERS, LEDGER_ATTR, LedgerStatus } from '../../lambda/shared/contract';

// The example stream record of the Lambda developer guide ("Using event filtering with a DynamoDB
// event source").
const guideRecord = {
  eventID: '1',
  eventVersion: '1.0',
  dynamodb: {
    ApproximateCreationDateTime: '1678831218.0',
    Keys: { CustomerName: { S: 'AnyCompany Industries' } },
    NewImage: {
      AccountManager: { S: 'Pat Candella' },
      PaymentTerms: { S: '60 days' },
      CustomerName: { S: 'AnyCompany Industries' },
    },
    SequenceNumber: '111',
    SizeBytes: 26,
    StreamViewType: 'NEW_IMAGE',
  },
};

describe('documented DynamoDB filter examples', () => {
  it('filters on a table key', () => {
    expect(matchesPattern({ dynamodb: { Keys: { CustomerName: { S: ['AnyCompany Industries'] } } } }, guideRecord)).toBe(true);
    expect(matchesPattern({ dynamodb: { Keys: { CustomerName: { S: ['Example Corp'] } } } }, guideRecord)).toBe(false);
  });

  it('filters on a NewImage attribute with a list of values (OR)', () => {
    const pattern = { dynamodb: { NewImage: { AccountManager: { S: ['Pat Candella', 'Shirley Rodriguez'] } } } };
    expect(matchesPattern(pattern, guideRecord)).toBe(true);
    const other = { dynamodb: { NewImage: { AccountManager: { S: 'Shirley Rodriguez' } } } };
    expect(matchesPattern(pattern, other)).toBe(true);
    expect(matchesPattern(pattern, { dynamodb: { NewImage: { AccountManager: { S: 'Diego Ramirez' } } } })).toBe(false);
  });

  it('combines several fields with AND (boolean expression example)', () => {
    const both = { dynamodb: { NewImage: { AccountManager: { S: ['Pat Candella'] }, PaymentTerms: { S: ['60 days'] } } } };
    expect(matchesPattern(both, guideRecord)).toBe(true);
    const wrongTerms = { dynamodb: { NewImage: { AccountManager: { S: ['Pat Candella'] }, PaymentTerms: { S: ['30 days'] } } } };
    expect(matchesPattern(wrongTerms, guideRecord)).toBe(false);
  });

  it('applies exists only to leaf nodes: the type key must be named', () => {
    expect(matchesPattern({ dynamodb: { NewImage: { AccountManager: { S: [{ exists: true }] } } } }, guideRecord)).toBe(true);
    // AccountManager is an object ({S: ...}), not a leaf: there is no value at that path.
    expect(matchesPattern({ dynamodb: { NewImage: { AccountManager: [{ exists: true }] } } }, guideRecord)).toBe(false);
    expect(matchesPattern({ dynamodb: { NewImage: { Region: { S: [{ exists: false }] } } } }, guideRecord)).toBe(true);
    expect(matchesPattern({ dynamodb: { NewImage: { AccountManager: { S: [{ exists: false }] } } } }, guideRecord)).toBe(false);
  });
});

describe('documented comparison operators (Lambda filter rule syntax table)', () => {
  it.each([
    ['null', { UserID: [null] }, { UserID: null }, { UserID: 'u1' }],
    ['empty', { LastName: [''] }, { LastName: '' }, { LastName: 'Doe' }],
    ['equals', { Name: ['Alice'] }, { Name: 'Alice' }, { Name: 'alice' }],
    ['equals-ignore-case', { Name: [{ 'equals-ignore-case': 'alice' }] }, { Name: 'ALICE' }, { Name: 'Bob' }],
    ['and', { Location: ['New York'], Day: ['Monday'] }, { Location: 'New York', Day: 'Monday' }, { Location: 'New York', Day: 'Friday' }],
    ['or', { PaymentType: ['Credit', 'Debit'] }, { PaymentType: 'Debit' }, { PaymentType: 'Cash' }],
    ['or (multiple fields)', { $or: [{ Location: ['New York'] }, { Day: ['Monday'] }] }, { Location: 'Paris', Day: 'Monday' }, { Location: 'Paris', Day: 'Friday' }],
    ['not', { Weather: [{ 'anything-but': ['Raining'] }] }, { Weather: 'Sunny' }, { Weather: 'Raining' }],
    ['numeric (equals)', { Price: [{ numeric: ['=', 100] }] }, { Price: 100 }, { Price: 101 }],
    ['numeric (range)', { Price: [{ numeric: ['>', 10, '<=', 20] }] }, { Price: 20 }, { Price: 10 }],
    ['exists', { ProductName: [{ exists: true }] }, { ProductName: 'x' }, { Other: 'x' }],
    ['does not exist', { ProductName: [{ exists: false }] }, { Other: 'x' }, { ProductName: 'x' }],
    ['begins with', { Region: [{ prefix: 'us-' }] }, { Region: 'us-east-1' }, { Region: 'eu-west-1' }],
    ['ends with', { FileName: [{ suffix: '.png' }] }, { FileName: 'cat.png' }, { FileName: 'cat.jpg' }],
  ])('%s', (_name, pattern, matching, notMatching) => {
    expect(matchesPattern(pattern, matching)).toBe(true);
    expect(matchesPattern(pattern, notMatching)).toBe(false);
  });

  it('anything-but does not match a missing field', () => {
    expect(matchesPattern({ Weather: [{ 'anything-but': ['Raining'] }] }, {})).toBe(false);
  });

  it('anything-but accepts a single value and a prefix form', () => {
    expect(matchesPattern({ state: [{ 'anything-but': 'initializing' }] }, { state: 'running' })).toBe(true);
    expect(matchesPattern({ state: [{ 'anything-but': 'initializing' }] }, { state: 'initializing' })).toBe(false);
    expect(matchesPattern({ Region: [{ 'anything-but': { prefix: 'us-' } }] }, { Region: 'eu-west-1' })).toBe(true);
    expect(matchesPattern({ Region: [{ 'anything-but': { prefix: 'us-' } }] }, { Region: 'us-west-2' })).toBe(false);
  });

  it('matches an array in the event when any element matches', () => {
    expect(matchesPattern({ tags: ['b'] }, { tags: ['a', 'b'] })).toBe(true);
    expect(matchesPattern({ tags: ['c'] }, { tags: ['a', 'b'] })).toBe(false);
  });

  it('does not compare a number-typed rule with a numeric string', () => {
    expect(matchesPattern({ Price: [{ numeric: ['>', 1] }] }, { Price: '5' })).toBe(false);
  });

  it('rejects what it does not implement instead of silently not matching', () => {
    expect(() => matchesPattern({ ip: [{ cidr: '10.0.0.0/24' }] }, {})).toThrow(InvalidFilterPatternError);
    expect(() => matchesPattern({ Name: 'Alice' }, {})).toThrow(InvalidFilterPatternError);
    expect(() => matchesPattern({ Price: [{ numeric: ['~', 1] }] }, {})).toThrow(InvalidFilterPatternError);
  });
});

describe("the downloader's stream filters (contract)", () => {
  const admits = compileFilters(DOWNLOADER_STREAM_FILTERS);
  const image = (status?: string): Record<string, unknown> => ({
    DBInstanceIdentifier: { S: 'lab-writer' },
    LogFileName: { S: 'audit/audit.log.0.2026-01-01-00-00.0' },
    ...(status ? { [LEDGER_ATTR.status]: { S: status } } : {}),
  });
  const record = (eventName: string, newStatus?: string, oldStatus?: string | null): Record<string, unknown> => ({
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: {
      ...(newStatus !== undefined ? { NewImage: image(newStatus) } : {}),
      ...(oldStatus !== null ? { OldImage: image(oldStatus) } : {}),
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  });

  it('admits a new item created PENDING', () => {
    expect(admits(record('INSERT', LedgerStatus.PENDING, null))).toBe(true);
  });

  it.each([LedgerStatus.DONE, LedgerStatus.IN_PROGRESS, LedgerStatus.FAILED])('admits %s -> PENDING', (from) => {
    expect(admits(record('MODIFY', LedgerStatus.PENDING, from))).toBe(true);
  });

  it('drops PENDING -> PENDING (a detector update of a pending item)', () => {
    expect(admits(record('MODIFY', LedgerStatus.PENDING, LedgerStatus.PENDING))).toBe(false);
  });

  it.each([LedgerStatus.IN_PROGRESS, LedgerStatus.DONE, LedgerStatus.FAILED, LedgerStatus.LOST])(
    "drops the downloader's own transition PENDING -> %s",
    (to) => {
      expect(admits(record('MODIFY', to, LedgerStatus.PENDING))).toBe(false);
    },
  );

  it('drops items created in another status and removals', () => {
    expect(admits(record('INSERT', LedgerStatus.DONE, null))).toBe(false);
    expect(admits(record('REMOVE', undefined, LedgerStatus.PENDING))).toBe(false);
  });
});
