import {
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { SendMessageBatchCommand, type SendMessageBatchCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { ENV } from '../../lambda/shared/contract';
import { fakeContext, setLambdaEnv } from './support/lambda-harness';

// Include list with an excluded member: exclusion wins; separators may be commas and/or spaces.
setLambdaEnv({ [ENV.includeInstances]: 'writer-a, reader-a,writer-b', [ENV.excludeInstances]: 'reader-a' });
const { handler } = require('../../lambda/scanner') as typeof import('../../lambda/scanner');

const rds = mockClient(RDSClient);
const sqs = mockClient(SQSClient);

test('only included, not excluded instances are queued', async () => {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: ['writer-a', 'reader-a', 'writer-b', 'writer-c'].map((id) => ({
      DBInstanceIdentifier: id,
      DBClusterIdentifier: 'cluster',
      Engine: 'aurora-mysql',
    })),
  });
  rds.on(DescribeDBClustersCommand).resolves({
    DBClusters: [{ DBClusterIdentifier: 'cluster', DBClusterParameterGroup: 'pg' }],
  });
  rds.on(DescribeDBClusterParametersCommand).resolves({
    Parameters: [{ ParameterName: 'server_audit_logging', ParameterValue: '1' }],
  });
  sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
    Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: 'id', MD5OfMessageBody: 'x' })),
  }));

  const summary = await handler({}, fakeContext());

  expect(summary.queued).toEqual(['writer-a', 'writer-b']);
  expect(summary.skippedByConfig.sort()).toEqual(['reader-a', 'writer-c']);
  const bodies = sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => JSON.parse(entry.MessageBody ?? '').DBInstanceIdentifier);
  expect(bodies).toEqual(['writer-a', 'writer-b']);
});
