/**
 * A small in-memory DynamoDB table that evaluates the condition and update expressions the ledger and
 * Powertools idempotency send (comparisons, AND/OR/NOT, attribute_exists/attribute_not_exists,
 * SET with + - if_not_exists list_append, REMOVE), records every change as a stream would, and answers
 * the document-client commands (ledger) and the low-level commands (idempotency persistence layer).
 * Unsupported syntax throws, so a test never passes on an expression the fake did not understand.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type {
  DeleteItemCommandInput,
  GetItemCommandInput,
  PutItemCommandInput,
  UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { AwsClientStub } from 'aws-sdk-client-mock';

export type Item = Record<string, unknown>;
type Names = Record<string, string> | undefined;
type Values = Record<string, unknown> | undefined;

export interface Change {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  oldImage?: Item;
  newImage?: Item;
}

const TOKEN = /\s*(#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*|<>|<=|>=|=|<|>|\(|\)|,|\+|-)/y;

function tokenize(expression: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expression.length) {
    if (/^\s*$/.test(expression.slice(TOKEN.lastIndex))) break;
    const match = TOKEN.exec(expression);
    if (!match) throw new Error(`fake DynamoDB cannot tokenize: ${expression.slice(TOKEN.lastIndex)}`);
    tokens.push(match[1]);
  }
  return tokens;
}

const clone = <T>(value: T): T => structuredClone(value);

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

class Parser {
  private at = 0;
  constructor(
    private readonly tokens: string[],
    private readonly item: Item | undefined,
    private readonly names: Names,
    private readonly values: Values,
  ) {}

  private peek(): string | undefined {
    return this.tokens[this.at];
  }

  private next(): string {
    const token = this.tokens[this.at++];
    if (token === undefined) throw new Error('fake DynamoDB: unexpected end of expression');
    return token;
  }

  private expect(token: string): void {
    const got = this.next();
    if (got.toUpperCase() !== token) throw new Error(`fake DynamoDB: expected ${token}, got ${got}`);
  }

  done(): boolean {
    return this.at >= this.tokens.length;
  }

  /** Attribute name of a path token (only top-level names are supported). */
  attributeName(): string {
    const token = this.next();
    if (token.startsWith('#')) {
      const name = this.names?.[token];
      if (name === undefined) throw new Error(`fake DynamoDB: undefined name ${token}`);
      return name;
    }
    if (/^[A-Za-z_]/.test(token)) return token;
    throw new Error(`fake DynamoDB: expected an attribute name, got ${token}`);
  }

  operand(): unknown {
    const token = this.peek();
    if (token?.startsWith(':')) {
      this.next();
      if (!this.values || !(token in this.values)) throw new Error(`fake DynamoDB: undefined value ${token}`);
      return clone(this.values[token]);
    }
    // Read the name first: `this.item?.[...]` would skip consuming the token when there is no item.
    const name = this.attributeName();
    return clone(this.item?.[name]);
  }

  // condition := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | primary
  condition(): boolean {
    let result = this.conjunction();
    while (this.peek()?.toUpperCase() === 'OR') {
      this.next();
      const right = this.conjunction();
      result = result || right;
    }
    return result;
  }

  private conjunction(): boolean {
    let result = this.negation();
    while (this.peek()?.toUpperCase() === 'AND') {
      this.next();
      const right = this.negation();
      result = result && right;
    }
    return result;
  }

  private negation(): boolean {
    if (this.peek()?.toUpperCase() === 'NOT') {
      this.next();
      return !this.negation();
    }
    return this.primary();
  }

  private primary(): boolean {
    const token = this.peek();
    if (token === '(') {
      this.next();
      const result = this.condition();
      this.expect(')');
      return result;
    }
    if (token === 'attribute_exists' || token === 'attribute_not_exists') {
      this.next();
      this.expect('(');
      const name = this.attributeName();
      this.expect(')');
      const exists = this.item !== undefined && this.item[name] !== undefined;
      return token === 'attribute_exists' ? exists : !exists;
    }
    const left = this.operand();
    const comparator = this.next();
    const right = this.operand();
    if (left === undefined || right === undefined) return false;
    switch (comparator) {
      case '=':
        return sameValue(left, right);
      case '<>':
        return !sameValue(left, right);
      case '<':
        return (left as number) < (right as number);
      case '<=':
        return (left as number) <= (right as number);
      case '>':
        return (left as number) > (right as number);
      case '>=':
        return (left as number) >= (right as number);
      default:
        throw new Error(`fake DynamoDB: unsupported comparator ${comparator}`);
    }
  }

  // value := term ((+|-) term)? ; term := operand | if_not_exists(path, value) | list_append(value, value)
  value(): unknown {
    const left = this.term();
    const op = this.peek();
    if (op === '+' || op === '-') {
      this.next();
      const right = this.term();
      if (typeof left !== 'number' || typeof right !== 'number') throw new Error('fake DynamoDB: arithmetic on non-numbers');
      return op === '+' ? left + right : left - right;
    }
    return left;
  }

  private term(): unknown {
    const token = this.peek();
    if (token === 'if_not_exists') {
      this.next();
      this.expect('(');
      const name = this.attributeName();
      this.expect(',');
      const fallback = this.value();
      this.expect(')');
      return this.item?.[name] !== undefined ? clone(this.item[name]) : fallback;
    }
    if (token === 'list_append') {
      this.next();
      this.expect('(');
      const first = this.value();
      this.expect(',');
      const second = this.value();
      this.expect(')');
      if (!Array.isArray(first) || !Array.isArray(second)) throw new Error('fake DynamoDB: list_append on non-lists');
      return [...first, ...second];
    }
    return this.operand();
  }

  /** Applies SET/REMOVE clauses; every operand is read from the item as it was before the update. */
  update(target: Item): void {
    while (!this.done()) {
      const clause = this.next().toUpperCase();
      if (clause === 'SET') {
        do {
          const name = this.attributeName();
          this.expect('=');
          target[name] = this.value();
        } while (this.peek() === ',' && this.next());
      } else if (clause === 'REMOVE') {
        do {
          delete target[this.attributeName()];
        } while (this.peek() === ',' && this.next());
      } else {
        throw new Error(`fake DynamoDB: unsupported update clause ${clause}`);
      }
    }
  }
}

function evaluateCondition(expression: string | undefined, item: Item | undefined, names: Names, values: Values): boolean {
  if (!expression) return true;
  const parser = new Parser(tokenize(expression), item, names, values);
  const result = parser.condition();
  if (!parser.done()) throw new Error(`fake DynamoDB: trailing tokens in ${expression}`);
  return result;
}

function conditionFailed(old: Item | undefined, returnOld: boolean): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: { httpStatusCode: 400 },
    Item: returnOld && old ? marshall(old, { removeUndefinedValues: true }) : undefined,
  });
}

export class FakeTable {
  readonly items = new Map<string, Item>();
  readonly changes: Change[] = [];
  /** Successful and attempted writes (Put/Update/Delete), for "no write" assertions. */
  writeAttempts = 0;
  /** Called before each write is evaluated: lets a test simulate a concurrent writer. */
  beforeWrite?: (key: Item) => void;

  constructor(
    readonly partitionKey: string,
    readonly sortKey?: string,
    /** Items per Query or Scan page, to exercise pagination. */
    public queryPageSize = 1000,
  ) {}

  private keyString(key: Item): string {
    const pk = key[this.partitionKey];
    const sk = this.sortKey ? key[this.sortKey] : '';
    if (pk === undefined || (this.sortKey && sk === undefined)) throw new Error('fake DynamoDB: incomplete key');
    return JSON.stringify([pk, sk]);
  }

  private keyOf(item: Item): Item {
    const key: Item = { [this.partitionKey]: item[this.partitionKey] };
    if (this.sortKey) key[this.sortKey] = item[this.sortKey];
    return key;
  }

  item(key: Item): Item | undefined {
    const found = this.items.get(this.keyString(key));
    return found && clone(found);
  }

  seed(item: Item): void {
    this.items.set(this.keyString(item), clone(item));
  }

  private record(old: Item | undefined, next: Item | undefined): void {
    const eventName = !old ? 'INSERT' : next ? 'MODIFY' : 'REMOVE';
    this.changes.push({ eventName, oldImage: old && clone(old), newImage: next && clone(next) });
  }

  // ---- document-client commands (plain JavaScript values) ----

  get(input: GetCommandInput): { Item?: Item } {
    return { Item: this.item(input.Key as Item) };
  }

  put(input: PutCommandInput, returnOld = false): Record<string, never> {
    this.writeAttempts++;
    const item = input.Item as Item;
    this.beforeWrite?.(this.keyOf(item));
    const old = this.items.get(this.keyString(item));
    const values = input.ExpressionAttributeValues as Values;
    if (!evaluateCondition(input.ConditionExpression, old, input.ExpressionAttributeNames, values)) {
      throw conditionFailed(old, returnOld);
    }
    this.items.set(this.keyString(item), clone(item));
    this.record(old, item);
    return {};
  }

  update(input: UpdateCommandInput): { Attributes?: Item } {
    this.writeAttempts++;
    const key = input.Key as Item;
    this.beforeWrite?.(key);
    const old = this.items.get(this.keyString(key));
    const names = input.ExpressionAttributeNames;
    const values = input.ExpressionAttributeValues as Values;
    if (!evaluateCondition(input.ConditionExpression, old, names, values)) throw conditionFailed(old, false);
    const next: Item = old ? clone(old) : clone(key);
    if (!input.UpdateExpression) throw new Error('fake DynamoDB: update without UpdateExpression');
    new Parser(tokenize(input.UpdateExpression), old, names, values).update(next);
    this.items.set(this.keyString(key), next);
    this.record(old, next);
    return { Attributes: input.ReturnValues === 'ALL_NEW' ? clone(next) : undefined };
  }

  delete(key: Item): void {
    this.writeAttempts++;
    const old = this.items.get(this.keyString(key));
    if (!old) return;
    this.items.delete(this.keyString(key));
    this.record(old, undefined);
  }

  /** Partition-key equality queries only (what the ledger sends), paged by queryPageSize. */
  query(input: QueryCommandInput): { Items: Item[]; LastEvaluatedKey?: Item } {
    const tokens = tokenize(input.KeyConditionExpression ?? '');
    if (tokens.length !== 3 || tokens[1] !== '=') throw new Error('fake DynamoDB: unsupported key condition');
    const attribute = tokens[0].startsWith('#') ? input.ExpressionAttributeNames?.[tokens[0]] : tokens[0];
    if (attribute !== this.partitionKey) throw new Error('fake DynamoDB: query must be on the partition key');
    const wanted = (input.ExpressionAttributeValues as Values)?.[tokens[2]];
    const matching = [...this.items.values()]
      .filter((item) => sameValue(item[this.partitionKey], wanted))
      .sort((a, b) => String(a[this.sortKey ?? '']).localeCompare(String(b[this.sortKey ?? ''])));
    const startAfter = input.ExclusiveStartKey ? this.keyString(input.ExclusiveStartKey as Item) : undefined;
    const from = startAfter ? matching.findIndex((item) => this.keyString(item) === startAfter) + 1 : 0;
    const page = matching.slice(from, from + this.queryPageSize);
    const more = from + page.length < matching.length;
    return { Items: page.map(clone), LastEvaluatedKey: more ? this.keyOf(page[page.length - 1]) : undefined };
  }

  /** Every item in key order, paged by queryPageSize; filters and projections are not supported. */
  scan(input: ScanCommandInput): { Items: Item[]; LastEvaluatedKey?: Item } {
    if (input.FilterExpression || input.ProjectionExpression) throw new Error('fake DynamoDB: unsupported scan options');
    const all = [...this.items.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, item]) => item);
    const startAfter = input.ExclusiveStartKey ? this.keyString(input.ExclusiveStartKey as Item) : undefined;
    const from = startAfter ? all.findIndex((item) => this.keyString(item) === startAfter) + 1 : 0;
    const page = all.slice(from, from + this.queryPageSize);
    const more = from + page.length < all.length;
    return { Items: page.map(clone), LastEvaluatedKey: more ? this.keyOf(page[page.length - 1]) : undefined };
  }

  // ---- low-level commands (AttributeValue maps), as the idempotency persistence layer sends them ----

  /** Answers a mocked document client's item commands (the ledger's) from this table. */
  serveDocumentClient(mock: AwsClientStub<DynamoDBDocumentClient>): void {
    mock.on(GetCommand).callsFake((input: GetCommandInput) => this.get(input));
    mock.on(PutCommand).callsFake((input: PutCommandInput) => this.put(input));
    mock.on(UpdateCommand).callsFake((input: UpdateCommandInput) => this.update(input));
    mock.on(QueryCommand).callsFake((input: QueryCommandInput) => this.query(input));
    mock.on(ScanCommand).callsFake((input: ScanCommandInput) => this.scan(input));
  }

  /** Answers a mocked low-level client's item commands (Powertools idempotency's) from this table. */
  serveLowLevelClient(mock: AwsClientStub<DynamoDBClient>): void {
    mock.on(GetItemCommand).callsFake((input: GetItemCommandInput) => this.getItem(input));
    mock.on(PutItemCommand).callsFake((input: PutItemCommandInput) => this.putItem(input));
    mock.on(UpdateItemCommand).callsFake((input: UpdateItemCommandInput) => this.updateItem(input));
    mock.on(DeleteItemCommand).callsFake((input: DeleteItemCommandInput) => this.deleteItem(input));
  }

  getItem(input: GetItemCommandInput): { Item?: Record<string, unknown> } {
    const found = this.item(unmarshall(input.Key ?? {}));
    return { Item: found && marshall(found, { removeUndefinedValues: true }) };
  }

  putItem(input: PutItemCommandInput): Record<string, never> {
    return this.put(
      {
        TableName: input.TableName,
        Item: unmarshall(input.Item ?? {}),
        ConditionExpression: input.ConditionExpression,
        ExpressionAttributeNames: input.ExpressionAttributeNames,
        ExpressionAttributeValues: input.ExpressionAttributeValues && unmarshall(input.ExpressionAttributeValues),
      },
      input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD',
    );
  }

  updateItem(input: UpdateItemCommandInput): Record<string, never> {
    this.update({
      TableName: input.TableName,
      Key: unmarshall(input.Key ?? {}),
      UpdateExpression: input.UpdateExpression,
      ConditionExpression: input.ConditionExpression,
      ExpressionAttributeNames: input.ExpressionAttributeNames,
      ExpressionAttributeValues: input.ExpressionAttributeValues && unmarshall(input.ExpressionAttributeValues),
    });
    return {};
  }

  deleteItem(input: DeleteItemCommandInput): Record<string, never> {
    this.delete(unmarshall(input.Key ?? {}));
    return {};
  }
}
