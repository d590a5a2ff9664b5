import { DOWNLOADER_STREAM_FILTERS, ENV, IDEMPOTENCY_KEY, LEDGER_KEY, LEDGER_STREAM_VIEW_TYPE } from '../../lambda/shared/contract';
import { defaultReconcileEveryCycles } from '../../scripts/local-lab/runner/lambda-service';
import { definitionFromTemplate, rateExpressionMs, synthesizePipeline } from '../../scripts/local-lab/stack-definition';

// One synthesis (no bundling) for the whole file.
const definition = synthesizePipeline('us-east-1', '123456789012');

describe('the lab reads the pipeline from the synthesized BackupPipelineStack', () => {
  it('applies exactly the filter patterns of the contract to the ledger stream', () => {
    expect(definition.downloaderSource.filters).toEqual(DOWNLOADER_STREAM_FILTERS);
  });

  it('finds the ledger and idempotency tables with the contract key schemas and stream view', () => {
    const ledger = definition.resources[definition.ledgerTableLogicalId]?.Properties ?? {};
    expect(ledger.KeySchema).toEqual([
      { AttributeName: LEDGER_KEY.partitionKey, KeyType: 'HASH' },
      { AttributeName: LEDGER_KEY.sortKey, KeyType: 'RANGE' },
    ]);
    expect(ledger.StreamSpecification).toEqual({ StreamViewType: LEDGER_STREAM_VIEW_TYPE });
    const idempotency = definition.resources[definition.idempotencyTableLogicalId]?.Properties ?? {};
    expect(idempotency.KeySchema).toEqual([{ AttributeName: IDEMPOTENCY_KEY.partitionKey, KeyType: 'HASH' }]);
    expect(idempotency.TimeToLiveSpecification).toEqual({ AttributeName: IDEMPOTENCY_KEY.ttlAttribute, Enabled: true });
  });

  it('wires the detector to a queue with a dead-letter redrive and the downloader to an on-failure queue', () => {
    const scanQueue = definition.resources[definition.detectorSource.queueLogicalId];
    expect(scanQueue?.Type).toBe('AWS::SQS::Queue');
    expect(scanQueue?.Properties?.RedrivePolicy).toMatchObject({ maxReceiveCount: expect.any(Number) });
    expect(definition.detectorSource.reportBatchItemFailures).toBe(true);
    const stream = definition.downloaderSource;
    expect(stream.onFailureQueueLogicalId && definition.resources[stream.onFailureQueueLogicalId]?.Type).toBe('AWS::SQS::Queue');
    expect(stream.reportBatchItemFailures).toBe(true);
    expect(stream.retryAttempts).toBeGreaterThanOrEqual(0);
  });

  it("takes each function's timeout and environment (references to resources, resolved later)", () => {
    const { scanner, detector, downloader } = definition.functions;
    expect(scanner.environment[ENV.scanQueueUrl]).toEqual({ Ref: definition.detectorSource.queueLogicalId });
    expect(detector.environment[ENV.ledgerTable]).toEqual({ Ref: definition.ledgerTableLogicalId });
    expect(downloader.environment[ENV.bucket]).toEqual({ Ref: definition.bucketLogicalId });
    expect(downloader.environment[ENV.idempotencyTable]).toEqual({ Ref: definition.idempotencyTableLogicalId });
    expect(downloader.environment.POWERTOOLS_SERVICE_NAME).toEqual(expect.any(String));
    for (const fn of [scanner, detector, downloader]) expect(fn.timeoutSeconds).toBeGreaterThan(3);
    expect(downloader.entry).toMatch(/lambda\/downloader\/index\.ts$/);
  });

  it("takes each function's /tmp size: the downloader's EphemeralStorage, Lambda's 512 MB for the others", () => {
    const { scanner, detector, downloader, reconciler } = definition.functions;
    expect(downloader.ephemeralStorageMb).toBe(1024);
    for (const fn of [scanner, detector, reconciler]) expect(fn.ephemeralStorageMb).toBe(512);
  });

  it('refuses a template whose functions have no event source mapping', () => {
    const resources = Object.fromEntries(
      Object.entries(definition.resources).filter(([, resource]) => resource.Type !== 'AWS::Lambda::EventSourceMapping'),
    );
    expect(() =>
      definitionFromTemplate(
        { Resources: resources },
        {
          bucket: definition.bucketLogicalId,
          ledgerTable: definition.ledgerTableLogicalId,
          idempotencyTable: definition.idempotencyTableLogicalId,
          functions: {
            scanner: definition.functions.scanner.logicalId,
            detector: definition.functions.detector.logicalId,
            downloader: definition.functions.downloader.logicalId,
            reconciler: definition.functions.reconciler.logicalId,
          },
        },
      ),
    ).toThrow(/event source mapping/);
  });

  it("reads the reconciler's environment, timeout and its own schedule from the template", () => {
    const { reconciler } = definition.functions;
    expect(reconciler.entry).toMatch(/lambda\/reconciler\/index\.ts$/);
    expect(reconciler.environment[ENV.ledgerTable]).toEqual({ Ref: definition.ledgerTableLogicalId });
    expect(reconciler.environment[ENV.bucket]).toEqual({ Ref: definition.bucketLogicalId });
    expect(Number(reconciler.environment[ENV.staleClaimMs])).toBeGreaterThan(0);
    expect(reconciler.timeoutSeconds).toBeGreaterThan(3);
    const target = definition.resources[definition.reconcileSchedule.logicalId]?.Properties?.Target as { Arn?: unknown } | undefined;
    expect(target?.Arn).toEqual({ 'Fn::GetAtt': [reconciler.logicalId, 'Arn'] });
    expect(definition.reconcileSchedule.logicalId).not.toBe(definition.schedule.logicalId);
    // The lab's cadence is the ratio of the two rates, whatever the stack sets them to.
    expect(defaultReconcileEveryCycles(definition)).toBe(Math.round(definition.reconcileSchedule.rateMs / definition.schedule.rateMs));
    expect(definition.reconcileSchedule.rateMs).toBeGreaterThan(definition.schedule.rateMs);
  });

  it('takes each scheduled function\'s asynchronous retries and on-failure queue from its EventInvokeConfig', () => {
    for (const role of ['scanner', 'reconciler'] as const) {
      const config = Object.values(definition.resources).find(
        (resource) =>
          resource.Type === 'AWS::Lambda::EventInvokeConfig' &&
          JSON.stringify(resource.Properties?.FunctionName) === JSON.stringify({ Ref: definition.functions[role].logicalId }),
      );
      expect(definition.functions[role].asyncInvoke.retryAttempts).toBe(config?.Properties?.MaximumRetryAttempts);
      const queue = definition.functions[role].asyncInvoke.onFailureQueueLogicalId;
      expect(queue && definition.resources[queue]?.Type).toBe('AWS::SQS::Queue');
    }
    // No EventInvokeConfig: Lambda's default of two retries and no destination.
    expect(definition.functions.detector.asyncInvoke).toEqual({ retryAttempts: 2 });
  });

  it('converts Scheduler rate expressions and refuses what has no fixed rate', () => {
    expect(rateExpressionMs('rate(15 minutes)')).toBe(900_000);
    expect(rateExpressionMs('rate(1 hour)')).toBe(3_600_000);
    expect(rateExpressionMs('rate(2 days)')).toBe(172_800_000);
    expect(() => rateExpressionMs('cron(0 * * * ? *)')).toThrow(/not a rate/);
    expect(() => rateExpressionMs('rate(0 minutes)')).toThrow(/not a rate/);
  });
});
