/**
 * Lambda event-source filter patterns (the EventBridge pattern language as Lambda documents it for
 * event filtering), evaluated locally because no emulator here implements them.
 *
 * Semantics, as documented:
 * - A pattern mirrors the event's structure; every key must match (AND). Leaves are arrays of rules,
 *   any of which may match (OR). `$or` takes a list of sub-patterns, any of which may match.
 * - Rules apply to *leaf* values only: a pattern path that ends on an object in the event has no value
 *   there (so `exists: true` does not match it — why DynamoDB filters must name the type key, `S`).
 * - An array in the event matches when any of its elements matches.
 * - Rule forms: exact value (string, number, boolean, null), `prefix`, `suffix`, `equals-ignore-case`,
 *   `anything-but` (a value, a list, or `{prefix|suffix|equals-ignore-case}`), `numeric` comparisons and
 *   `exists`. Anything else is rejected rather than silently not matching.
 */

export type FilterPattern = Readonly<Record<string, unknown>>;

export class InvalidFilterPatternError extends Error {}

type Leaf = string | number | boolean | null;

/** Leaf values found at `path` (arrays expanded at every level, objects are not values). */
function valuesAt(node: unknown, path: readonly string[]): Leaf[] {
  if (Array.isArray(node)) return node.flatMap((element) => valuesAt(element, path));
  if (path.length === 0) {
    return node !== null && typeof node === 'object' ? [] : node === undefined ? [] : [node as Leaf];
  }
  if (node === null || typeof node !== 'object') return [];
  const [head, ...rest] = path;
  const record = node as Record<string, unknown>;
  if (head === undefined || !Object.prototype.hasOwnProperty.call(record, head)) return [];
  return valuesAt(record[head], rest);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

function stringMatcher(operator: string, operand: unknown): (value: string) => boolean {
  if (typeof operand === 'string') {
    if (operator === 'prefix') return (value) => value.startsWith(operand);
    if (operator === 'suffix') return (value) => value.endsWith(operand);
    if (operator === 'equals-ignore-case') return (value) => value.toLowerCase() === operand.toLowerCase();
  }
  if (isPlainObject(operand) && (operator === 'prefix' || operator === 'suffix')) {
    const ignoreCase = operand['equals-ignore-case'];
    if (Object.keys(operand).length === 1 && typeof ignoreCase === 'string') {
      const needle = ignoreCase.toLowerCase();
      return operator === 'prefix'
        ? (value) => value.toLowerCase().startsWith(needle)
        : (value) => value.toLowerCase().endsWith(needle);
    }
  }
  throw new InvalidFilterPatternError(`invalid ${operator} operand ${JSON.stringify(operand)}`);
}

function numericMatcher(operand: unknown): (value: number) => boolean {
  if (!Array.isArray(operand) || operand.length === 0 || operand.length % 2 !== 0 || operand.length > 4) {
    throw new InvalidFilterPatternError(`invalid numeric operand ${JSON.stringify(operand)}`);
  }
  const checks: Array<(value: number) => boolean> = [];
  for (let index = 0; index < operand.length; index += 2) {
    const comparison = operand[index] as unknown;
    const bound = operand[index + 1] as unknown;
    if (typeof bound !== 'number') throw new InvalidFilterPatternError(`numeric bound ${JSON.stringify(bound)} is not a number`);
    switch (comparison) {
      case '=': checks.push((value) => value === bound); break;
      case '<': checks.push((value) => value < bound); break;
      case '<=': checks.push((value) => value <= bound); break;
      case '>': checks.push((value) => value > bound); break;
      case '>=': checks.push((value) => value >= bound); break;
      default: throw new InvalidFilterPatternError(`unknown numeric comparison ${JSON.stringify(comparison)}`);
    }
  }
  return (value) => checks.every((check) => check(value));
}

/** `anything-but`: the value is present and matches none of the listed values/forms. */
function anythingButMatcher(operand: unknown): (value: Leaf) => boolean {
  if (isPlainObject(operand)) {
    const entries = Object.entries(operand);
    const [operator, inner] = entries[0] ?? [];
    if (entries.length !== 1 || operator === undefined) {
      throw new InvalidFilterPatternError(`invalid anything-but operand ${JSON.stringify(operand)}`);
    }
    if (operator === 'equals-ignore-case' && Array.isArray(inner)) {
      const excluded = inner.map((item) => {
        if (typeof item !== 'string') throw new InvalidFilterPatternError('anything-but equals-ignore-case takes strings');
        return item.toLowerCase();
      });
      return (value) => typeof value === 'string' && !excluded.includes(value.toLowerCase());
    }
    const excluded = stringMatcher(operator, inner);
    return (value) => typeof value === 'string' && !excluded(value);
  }
  const excluded = Array.isArray(operand) ? operand : [operand];
  for (const item of excluded) {
    if (typeof item !== 'string' && typeof item !== 'number') {
      throw new InvalidFilterPatternError(`anything-but takes strings or numbers, got ${JSON.stringify(item)}`);
    }
  }
  // A null is not a string or number: none of the listed values, but nothing to compare either.
  return (value) => value !== null && (typeof value === 'string' || typeof value === 'number') && !excluded.includes(value);
}

type RuleMatcher = (values: readonly Leaf[]) => boolean;

function compileRule(rule: unknown): RuleMatcher {
  if (rule === null || typeof rule === 'string' || typeof rule === 'number' || typeof rule === 'boolean') {
    return (values) => values.some((value) => value === rule);
  }
  if (!isPlainObject(rule)) throw new InvalidFilterPatternError(`invalid rule ${JSON.stringify(rule)}`);
  const entries = Object.entries(rule);
  const [operator, operand] = entries[0] ?? [];
  if (entries.length !== 1 || operator === undefined) {
    throw new InvalidFilterPatternError(`a rule has exactly one operator, got ${JSON.stringify(rule)}`);
  }
  switch (operator) {
    case 'exists':
      if (typeof operand !== 'boolean') throw new InvalidFilterPatternError('exists takes true or false');
      return (values) => (values.length > 0) === operand;
    case 'prefix':
    case 'suffix':
    case 'equals-ignore-case': {
      const matches = stringMatcher(operator, operand);
      return (values) => values.some((value) => typeof value === 'string' && matches(value));
    }
    case 'numeric': {
      const matches = numericMatcher(operand);
      return (values) => values.some((value) => typeof value === 'number' && matches(value));
    }
    case 'anything-but': {
      const matches = anythingButMatcher(operand);
      return (values) => values.some(matches);
    }
    default:
      throw new InvalidFilterPatternError(`unsupported filter operator "${operator}"`);
  }
}

export type CompiledPattern = (event: unknown) => boolean;

function compileAt(pattern: unknown, path: readonly string[]): CompiledPattern {
  if (!isPlainObject(pattern)) throw new InvalidFilterPatternError(`a pattern is an object, got ${JSON.stringify(pattern)}`);
  const checks: CompiledPattern[] = [];
  for (const [key, value] of Object.entries(pattern)) {
    if (key === '$or') {
      if (!Array.isArray(value) || value.length < 2) throw new InvalidFilterPatternError('$or takes at least two patterns');
      const alternatives = value.map((alternative) => compileAt(alternative, path));
      checks.push((event) => alternatives.some((alternative) => alternative(event)));
    } else if (Array.isArray(value)) {
      if (value.length === 0) throw new InvalidFilterPatternError(`empty rule list at ${[...path, key].join('.')}`);
      const rules = value.map(compileRule);
      const fieldPath = [...path, key];
      checks.push((event) => {
        const values = valuesAt(event, fieldPath);
        return rules.some((rule) => rule(values));
      });
    } else if (isPlainObject(value)) {
      checks.push(compileAt(value, [...path, key]));
    } else {
      throw new InvalidFilterPatternError(
        `leaf ${[...path, key].join('.')} must be a list of rules, got ${JSON.stringify(value)}`,
      );
    }
  }
  return (event) => checks.every((check) => check(event));
}

export function compilePattern(pattern: FilterPattern): CompiledPattern {
  return compileAt(pattern, []);
}

/** Lambda delivers a record when any of the mapping's filters matches it (no filters: every record). */
export function compileFilters(patterns: readonly FilterPattern[]): CompiledPattern {
  if (patterns.length === 0) return () => true;
  const compiled = patterns.map(compilePattern);
  return (event) => compiled.some((pattern) => pattern(event));
}

export function matchesPattern(pattern: FilterPattern, event: unknown): boolean {
  return compilePattern(pattern)(event);
}
