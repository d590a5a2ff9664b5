import { createServer } from 'node:net';
import { startRdsLogEndpoint } from '../../scripts/local-lab/rds-endpoint';
import { PreflightError } from '../../scripts/local-lab/preflight';
import { checkRdsEndpointAnswers } from '../../scripts/local-lab/rds-api-source';

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('checkRdsEndpointAnswers (npm run lab -- --rds-endpoint)', () => {
  it('passes for an endpoint that answers DescribeDBInstances', async () => {
    const endpoint = await startRdsLogEndpoint({ clusters: [], parameterGroups: {} });
    try {
      await expect(checkRdsEndpointAnswers(endpoint.url, 'us-east-1')).resolves.toBeUndefined();
      expect(endpoint.stats().calls.DescribeDBInstances).toBe(1);
    } finally {
      await endpoint.close();
    }
  });

  it('fails at once, naming the endpoint, when nothing answers there', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const failure = checkRdsEndpointAnswers(url, 'us-east-1');
    await expect(failure).rejects.toThrow(PreflightError);
    await expect(failure).rejects.toThrow(`the RDS endpoint ${url} does not answer DescribeDBInstances`);
    expect(Date.now() - started).toBeLessThan(5000); // one attempt, no retries with backoff
  });
});
