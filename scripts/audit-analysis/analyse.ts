/**
 * Checks audit records against what a test run must have left in the log, and counts events by
 * operation. Records are fed one at a time (the files are streamed), so memory does not grow with the
 * size of the log: per expectation only a count and the first piece of evidence are kept.
 */
import type { AuditRecord } from './parser';
import { CATEGORIES, expectations as planExpectations, findTag, parseMarker, runNames, type Category, type EvidenceRule, type Expectation, type ExpectationOptions } from './plan';

export interface Origin {
  /** File path or S3 key the record was read from. */
  source: string;
  lineNumber: number;
}

export interface Evidence extends Origin {
  time: string;
  serverHost: string;
  username: string;
  operation: string;
  retcode: number | undefined;
  object: string;
}

export interface ExpectationResult {
  category: Category;
  id: string;
  description: string;
  found: boolean;
  count: number;
  evidence?: Evidence;
}

export interface CategoryResult {
  category: Category;
  passed: boolean;
  expectations: ExpectationResult[];
  /** Events attributed to this category of the run, by operation. */
  byOperation: Record<string, number>;
  events: number;
}

export interface UnparseableSample extends Origin {
  reason: string;
  text: string;
}

export interface AnalysisResult {
  marker: string;
  passed: boolean;
  /** `category/id` of every expectation not found. */
  missing: string[];
  categories: CategoryResult[];
  totals: {
    /** Records parsed from everything read (not only this run's). */
    records: number;
    unparseable: number;
    byOperation: Record<string, number>;
    /** Records attributed to this run. */
    runEvents: number;
    runByOperation: Record<string, number>;
    firstRunEvent?: string;
    lastRunEvent?: string;
  };
  unparseableSamples: UnparseableSample[];
}

const MAX_UNPARSEABLE_SAMPLES = 5;
const MAX_EVIDENCE_OBJECT_CHARS = 300;
const TABLE_OPERATIONS = new Set(['READ', 'WRITE', 'CREATE', 'ALTER', 'RENAME', 'DROP']);

function isQuery(record: AuditRecord): boolean {
  return record.operation.startsWith('QUERY');
}

/** A TABLE event names `table`, or `table|db.newname` for RENAME. */
function tableOf(record: AuditRecord): string {
  const bar = record.object.indexOf('|');
  return (bar >= 0 ? record.object.slice(0, bar) : record.object).toLowerCase();
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** A statement logged without its tag comment (rewritten by the server) that names the run's account. */
function matchesUntagged(untagged: { verb: RegExp; account: string }, record: AuditRecord): boolean {
  return untagged.verb.test(record.object) && new RegExp(`\\b${untagged.account}\\b`).test(record.object);
}

function matches(rule: EvidenceRule, record: AuditRecord, tagged: boolean): boolean {
  switch (rule.kind) {
    case 'statement':
      return (
        isQuery(record) &&
        record.retcode === 0 &&
        (rule.username === undefined || record.username === rule.username) &&
        (record.object.includes(`/* ${rule.tag} */`) || (!tagged && rule.untagged !== undefined && matchesUntagged(rule.untagged, record)))
      );
    case 'connect':
      return record.operation === 'CONNECT' && record.retcode === 0 && record.username === rule.username;
    case 'failed-connect':
      return (
        record.username === rule.username &&
        (record.operation === 'FAILED_CONNECT' || (record.operation === 'CONNECT' && record.retcode !== undefined && record.retcode !== 0))
      );
    case 'table-event': {
      if (record.operation !== rule.operation) return false;
      if (rule.username !== undefined && record.username !== rule.username) return false;
      const table = tableOf(record);
      return typeof rule.table === 'string' ? table === rule.table.toLowerCase() : rule.table.test(table);
    }
    case 'user-queries':
      return isQuery(record) && !tagged && record.username === rule.username && rule.pattern.test(record.object);
  }
}

interface PendingTableEvents {
  queryId: number;
  records: AuditRecord[];
}

export class AuditAnalyser {
  private readonly expectationResults: Array<{ expectation: Expectation; result: ExpectationResult }>;
  private readonly categoryCounts = new Map<Category, Record<string, number>>();
  private readonly categoriesInScope: Category[];
  private readonly userCategory: Map<string, Category>;
  private readonly table: string;
  private readonly runId: string;
  private readonly untaggedStatements: Array<{ category: Category; untagged: { verb: RegExp; account: string } }>;
  private readonly totals: Omit<AnalysisResult['totals'], 'firstRunEvent' | 'lastRunEvent'> = {
    records: 0,
    unparseable: 0,
    byOperation: {},
    runEvents: 0,
    runByOperation: {},
  };
  private firstRunEventMs = Infinity;
  private lastRunEventMs = -Infinity;
  private readonly unparseableSamples: UnparseableSample[] = [];
  /**
   * MariaDB writes a statement's TABLE events just before its QUERY line (same connection and query
   * id); they are held per connection until the QUERY line says which category they belong to.
   */
  private readonly pendingTableEvents = new Map<string, PendingTableEvents>();
  /** The last tagged query per connection, for writers that put TABLE events after the QUERY. */
  private readonly lastTaggedQuery = new Map<string, { queryId: number; category: Category }>();

  constructor(
    readonly marker: string,
    expectationList: readonly Expectation[],
  ) {
    const names = runNames(marker);
    this.table = names.table.toLowerCase();
    this.runId = parseMarker(marker).runId;
    this.untaggedStatements = expectationList.flatMap((e) =>
      e.rule.kind === 'statement' && e.rule.untagged ? [{ category: e.category, untagged: e.rule.untagged }] : [],
    );
    this.userCategory = new Map<string, Category>([
      [names.authUser, 'authentication'],
      [names.oltpUser, 'oltp'],
      [names.privUser, 'privilege'],
    ]);
    this.expectationResults = expectationList.map((expectation) => ({
      expectation,
      result: { category: expectation.category, id: expectation.id, description: expectation.description, found: false, count: 0 },
    }));
    this.categoriesInScope = CATEGORIES.filter((c) => expectationList.some((e) => e.category === c));
  }

  static forRun(marker: string, options: ExpectationOptions = {}): AuditAnalyser {
    return new AuditAnalyser(marker, planExpectations(marker, options));
  }

  addUnparseable(reason: string, text: string, origin: Origin): void {
    this.totals.unparseable += 1;
    if (this.unparseableSamples.length < MAX_UNPARSEABLE_SAMPLES) {
      this.unparseableSamples.push({ ...origin, reason, text: text.length > 300 ? `${text.slice(0, 300)}…` : text });
    }
  }

  addRecord(record: AuditRecord, origin: Origin): void {
    this.totals.records += 1;
    increment(this.totals.byOperation, record.operation);

    const tag = isQuery(record) ? findTag(record.object, this.marker) : undefined;
    for (const { expectation, result } of this.expectationResults) {
      if (matches(expectation.rule, record, tag !== undefined)) {
        result.count += 1;
        if (!result.found) {
          result.found = true;
          result.evidence = this.evidence(record, origin);
        }
      }
    }

    const connectionKey = `${record.serverHost}\u0000${record.connectionId}`;
    if (TABLE_OPERATIONS.has(record.operation)) {
      const category = this.directCategory(record) ?? this.categoryOfLastTaggedQuery(connectionKey, record.queryId);
      if (category) {
        this.attribute(category, record);
      } else {
        this.holdTableEvent(connectionKey, record);
      }
      return;
    }

    const statementCategory = tag ? this.knownCategory(tag.category) : isQuery(record) ? this.untaggedCategory(record) : undefined;
    const category = statementCategory ?? this.directCategory(record);
    if (isQuery(record)) {
      const held = this.pendingTableEvents.get(connectionKey);
      this.pendingTableEvents.delete(connectionKey);
      if (category && held && held.queryId === record.queryId) {
        for (const tableEvent of held.records) this.attribute(category, tableEvent);
      }
      if (statementCategory) this.lastTaggedQuery.set(connectionKey, { queryId: record.queryId, category: statementCategory });
    }
    if (record.operation === 'DISCONNECT') {
      this.pendingTableEvents.delete(connectionKey);
      this.lastTaggedQuery.delete(connectionKey);
    }
    if (category) this.attribute(category, record);
  }

  result(): AnalysisResult {
    const categories = this.categoriesInScope.map((category): CategoryResult => {
      const results = this.expectationResults.filter((e) => e.expectation.category === category).map((e) => ({ ...e.result }));
      const byOperation = { ...(this.categoryCounts.get(category) ?? {}) };
      return {
        category,
        passed: results.every((r) => r.found),
        expectations: results,
        byOperation,
        events: Object.values(byOperation).reduce((a, b) => a + b, 0),
      };
    });
    const missing = this.expectationResults.filter((e) => !e.result.found).map((e) => `${e.expectation.category}/${e.expectation.id}`);
    return {
      marker: this.marker,
      passed: missing.length === 0,
      missing,
      categories,
      totals: {
        ...this.totals,
        byOperation: { ...this.totals.byOperation },
        runByOperation: { ...this.totals.runByOperation },
        ...(this.totals.runEvents > 0
          ? { firstRunEvent: new Date(this.firstRunEventMs).toISOString(), lastRunEvent: new Date(this.lastRunEventMs).toISOString() }
          : {}),
      },
      unparseableSamples: [...this.unparseableSamples],
    };
  }

  private knownCategory(name: string): Category | undefined {
    return (CATEGORIES as readonly string[]).includes(name) ? (name as Category) : undefined;
  }

  private untaggedCategory(record: AuditRecord): Category | undefined {
    if (!record.object.includes(this.runId)) return undefined;
    return this.untaggedStatements.find((s) => matchesUntagged(s.untagged, record))?.category;
  }

  /** Records that belong to the run by who or what they are about, without a tag. */
  private directCategory(record: AuditRecord): Category | undefined {
    const byUser = this.userCategory.get(record.username);
    if (byUser) return byUser;
    if (TABLE_OPERATIONS.has(record.operation) && tableOf(record) === this.table) return 'schema';
    return undefined;
  }

  private categoryOfLastTaggedQuery(connectionKey: string, queryId: number): Category | undefined {
    const last = this.lastTaggedQuery.get(connectionKey);
    return last && last.queryId === queryId ? last.category : undefined;
  }

  private holdTableEvent(connectionKey: string, record: AuditRecord): void {
    const held = this.pendingTableEvents.get(connectionKey);
    if (held && held.queryId === record.queryId) {
      held.records.push(record);
    } else {
      this.pendingTableEvents.set(connectionKey, { queryId: record.queryId, records: [record] });
    }
  }

  private attribute(category: Category, record: AuditRecord): void {
    let counts = this.categoryCounts.get(category);
    if (!counts) {
      counts = {};
      this.categoryCounts.set(category, counts);
    }
    increment(counts, record.operation);
    this.totals.runEvents += 1;
    increment(this.totals.runByOperation, record.operation);
    if (record.timeMs < this.firstRunEventMs) this.firstRunEventMs = record.timeMs;
    if (record.timeMs > this.lastRunEventMs) this.lastRunEventMs = record.timeMs;
  }

  private evidence(record: AuditRecord, origin: Origin): Evidence {
    const object = record.object.length > MAX_EVIDENCE_OBJECT_CHARS ? `${record.object.slice(0, MAX_EVIDENCE_OBJECT_CHARS)}…` : record.object;
    return {
      ...origin,
      time: new Date(record.timeMs).toISOString(),
      serverHost: record.serverHost,
      username: record.username,
      operation: record.operation,
      retcode: record.retcode,
      object,
    };
  }
}

/** Analyses records already in memory (tests, small inputs). */
export function analyse(
  records: Iterable<AuditRecord>,
  marker: string,
  options: ExpectationOptions = {},
  source = 'memory',
): AnalysisResult {
  const analyser = AuditAnalyser.forRun(marker, options);
  let lineNumber = 0;
  for (const record of records) {
    lineNumber += 1;
    analyser.addRecord(record, { source, lineNumber });
  }
  return analyser.result();
}
