import {
  type DBInstance,
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { SendMessageBatchCommand, type SendMessageBatchCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { ScanMessage } from '../../lambda/shared/contract';
import { QUEUE_URL, fakeContext, setLambdaEnv } from './support/lambda-harness';

setLambdaEnv();
const { handler } = require('../../lambda/scanner') as typeof import('../../lambda/scanner');

const rds = mockClient(RDSClient);
const sqs = mockClient(SQSClient);

interface ClusterSpec {
  id: string;
  parameterGroup: string;
}

/** Serves instances two per page, clusters, and parameter groups (one page per entry of `pages`). */
function serveRds(instances: DBInstance[], clusters: ClusterSpec[], parameterPages: Record<string, string[][]>) {
  rds.on(DescribeDBInstancesCommand).callsFake((input) => {
    const from = input.Marker ? Number(input.Marker) : 0;
    const page = instances.slice(from, from + 2);
    return { DBInstances: page, Marker: from + 2 < instances.length ? String(from + 2) : undefined };
  });
  rds.on(DescribeDBClustersCommand).callsFake(() => ({
    DBClusters: clusters.map((c) => ({ DBClusterIdentifier: c.id, DBClusterParameterGroup: c.parameterGroup })),
  }));
  rds.on(DescribeDBClusterParametersCommand).callsFake((input) => {
    const pages = parameterPages[input.DBClusterParameterGroupName ?? ''];
    const index = input.Marker ? Number(input.Marker) : 0;
    const page = pages[index];
    return {
      Parameters: page.map((entry) => {
        const [name, value] = entry.split('=');
        return { ParameterName: name, ParameterValue: value, Source: 'user' };
      }),
      Marker: index + 1 < pages.length ? String(index + 1) : undefined,
    };
  });
}

const auroraMySql = (id: string, cluster: string): DBInstance => ({
  DBInstanceIdentifier: id,
  DBClusterIdentifier: cluster,
  Engine: 'aurora-mysql',
});

function sentMessages(): ScanMessage[] {
  return sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => JSON.parse(entry.MessageBody ?? '') as ScanMessage);
}

beforeEach(() => {
  rds.reset();
  sqs.reset();
  sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
    Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id, MessageId: `id-${entry.Id}`, MD5OfMessageBody: 'x' })),
    Failed: [],
  }));
});

test('queues every audit-enabled aurora-mysql instance across pages, writers and readers alike', async () => {
  serveRds(
    [
      auroraMySql('writer-a', 'cluster-a'),
      { DBInstanceIdentifier: 'postgres-1', DBClusterIdentifier: 'cluster-pg', Engine: 'aurora-postgresql' },
      auroraMySql('reader-a', 'cluster-a'),
      auroraMySql('writer-b', 'cluster-b'),
      { DBInstanceIdentifier: 'classic', Engine: 'mysql' },
      auroraMySql('writer-c', 'cluster-c'),
      auroraMySql('writer-d', 'cluster-d'),
    ],
    [
      { id: 'cluster-a', parameterGroup: 'pg-audit' },
      { id: 'cluster-b', parameterGroup: 'pg-no-audit' },
      { id: 'cluster-c', parameterGroup: 'pg-audit' },
      { id: 'cluster-d', parameterGroup: 'pg-audit-second-page' },
      { id: 'cluster-pg', parameterGroup: 'pg-postgres' },
    ],
    {
      'pg-audit': [['server_audit_events=CONNECT,QUERY', 'server_audit_logging=1']],
      'pg-no-audit': [['server_audit_logging=0']],
      'pg-audit-second-page': [['binlog_format=ROW'], ['server_audit_logging=on']],
    },
  );

  const summary = await handler({}, fakeContext());

  expect(rds).toHaveReceivedCommandTimes(DescribeDBInstancesCommand, 4);
  const messages = sentMessages();
  expect(messages.map((m) => m.DBInstanceIdentifier).sort()).toEqual(['reader-a', 'writer-a', 'writer-c', 'writer-d']);
  expect(messages.find((m) => m.DBInstanceIdentifier === 'reader-a')).toEqual({
    DBInstanceIdentifier: 'reader-a',
    DBClusterIdentifier: 'cluster-a',
    ScannedAt: expect.any(Number),
  });
  expect(summary.auditDisabled).toEqual(['writer-b']);
  expect(summary.queued).toHaveLength(4);
  // Cached per parameter group: pg-audit is shared by two clusters but read once.
  const groupsRead = rds
    .commandCalls(DescribeDBClusterParametersCommand)
    .map((call) => call.args[0].input.DBClusterParameterGroupName);
  expect(groupsRead.sort()).toEqual(['pg-audit', 'pg-audit-second-page', 'pg-audit-second-page', 'pg-no-audit']);
  expect(sqs).toHaveReceivedCommandWith(SendMessageBatchCommand, { QueueUrl: QUEUE_URL });
});

test('sends in batches of at most ten', async () => {
  const instances = Array.from({ length: 23 }, (_, i) => auroraMySql(`db-${i}`, 'cluster-a'));
  serveRds(instances, [{ id: 'cluster-a', parameterGroup: 'pg-audit' }], {
    'pg-audit': [['server_audit_logging=ON']],
  });

  await handler({}, fakeContext());

  const sizes = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries?.length);
  expect(sizes).toEqual([10, 10, 3]);
  expect(new Set(sentMessages().map((m) => m.DBInstanceIdentifier)).size).toBe(23);
});

test('re-sends only the entries SQS rejected', async () => {
  serveRds([auroraMySql('w1', 'c'), auroraMySql('w2', 'c'), auroraMySql('w3', 'c')], [{ id: 'c', parameterGroup: 'pg' }], {
    pg: [['server_audit_logging=1']],
  });
  sqs
    .on(SendMessageBatchCommand)
    .resolvesOnce({
      Successful: [
        { Id: 'm0', MessageId: '1', MD5OfMessageBody: 'x' },
        { Id: 'm2', MessageId: '3', MD5OfMessageBody: 'x' },
      ],
      Failed: [{ Id: 'm1', SenderFault: false, Code: 'InternalError' }],
    })
    .resolvesOnce({ Successful: [{ Id: 'm1', MessageId: '2', MD5OfMessageBody: 'x' }], Failed: [] });

  const summary = await handler({}, fakeContext());

  const calls = sqs.commandCalls(SendMessageBatchCommand);
  expect(calls).toHaveLength(2);
  const retried = calls[1].args[0].input.Entries ?? [];
  expect(retried.map((entry) => JSON.parse(entry.MessageBody ?? '').DBInstanceIdentifier)).toEqual(['w2']);
  expect(summary.queued).toEqual(['w1', 'w2', 'w3']);
});

test('fails loudly when entries are still rejected after retries', async () => {
  serveRds([auroraMySql('w1', 'c'), auroraMySql('w2', 'c')], [{ id: 'c', parameterGroup: 'pg' }], {
    pg: [['server_audit_logging=1']],
  });
  sqs.on(SendMessageBatchCommand).callsFake(() => ({
    Successful: [{ Id: 'm0', MessageId: '1', MD5OfMessageBody: 'x' }],
    Failed: [{ Id: 'm1', SenderFault: false, Code: 'InternalError' }],
  }));

  await expect(handler({}, fakeContext())).rejects.toThrow(/w2/);
  expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 4);
});

test('no aurora-mysql instance: nothing described beyond instances, nothing sent', async () => {
  serveRds([{ DBInstanceIdentifier: 'pg', Engine: 'postgres' }], [], {});

  const summary = await handler({}, fakeContext());

  expect(summary.queued).toEqual([]);
  expect(rds).not.toHaveReceivedCommand(DescribeDBClustersCommand);
  expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
});
