/**
 * Counts the calls an SDK client retried because the service throttled them (RDS answers
 * `Throttling: Rate exceeded` when the account-wide API budget is spent). Two middlewares: one inside
 * the SDK's retry loop sees every attempt's error and counts throttled attempts; one outside sees the
 * call's outcome, so a final throttled attempt the SDK gave up on is not counted as retried.
 * `$metadata.attempts` alone cannot tell throttling from other retried errors (5xx, timeouts).
 */
import type {
  FinalizeRequestMiddleware,
  HandlerExecutionContext,
  InitializeMiddleware,
  MiddlewareStack,
} from '@smithy/types';

/** The error codes the SDK's retry strategy classifies as throttling (its THROTTLING_ERROR_CODES). */
const THROTTLING_ERROR_CODES: ReadonlySet<string> = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);

export function isThrottlingError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, Code, $metadata, $retryable } = error as {
    name?: unknown;
    Code?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: { throttling?: boolean };
  };
  return (
    $retryable?.throttling === true ||
    $metadata?.httpStatusCode === 429 ||
    (typeof name === 'string' && THROTTLING_ERROR_CODES.has(name)) ||
    (typeof Code === 'string' && THROTTLING_ERROR_CODES.has(Code))
  );
}

/** Per-call scratch space on the SDK's execution context (one context per command, shared by its attempts). */
const THROTTLED_ATTEMPTS = 'auditLogBackupThrottledAttempts';

type Scratch = HandlerExecutionContext & { [THROTTLED_ATTEMPTS]?: number };

export class ThrottleRetryCounter {
  private retried = 0;

  /** Retries counted since the last take (an invocation takes them once, as its metric). */
  take(): number {
    const retried = this.retried;
    this.retried = 0;
    return retried;
  }

  /** Counts the client's throttle retries from now on (once per client: the names are unique). */
  attach<Input extends object, Output extends object>(client: { middlewareStack: MiddlewareStack<Input, Output> }): void {
    const perAttempt: FinalizeRequestMiddleware<Input, Output> = (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (isThrottlingError(error)) {
          const scratch = context as Scratch;
          scratch[THROTTLED_ATTEMPTS] = (scratch[THROTTLED_ATTEMPTS] ?? 0) + 1;
        }
        throw error;
      }
    };
    const perCall: InitializeMiddleware<Input, Output> = (next, context) => async (args) => {
      let gaveUpThrottled = false;
      try {
        return await next(args);
      } catch (error) {
        gaveUpThrottled = isThrottlingError(error);
        throw error;
      } finally {
        const throttled = (context as Scratch)[THROTTLED_ATTEMPTS] ?? 0;
        this.retried += Math.max(0, gaveUpThrottled ? throttled - 1 : throttled);
      }
    };
    client.middlewareStack.addRelativeTo(perAttempt, {
      name: 'countThrottledAttempts',
      relation: 'after',
      toMiddleware: 'retryMiddleware',
    });
    client.middlewareStack.add(perCall, { step: 'initialize', name: 'countThrottleRetries' });
  }
}
