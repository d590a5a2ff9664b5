import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The runtime every house function uses; the handlers and their pinned dependencies are tested on it. */
export const HOUSE_RUNTIME = lambda.Runtime.NODEJS_22_X;

export type PowertoolsLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface HouseFunctionProps {
  /** Path to the handler's TypeScript entry; it must export `handler`. */
  readonly entry: string;
  /** Powertools service name: the `service` key of every log line and metric dimension. */
  readonly serviceName: string;
  /** Powertools metrics namespace. */
  readonly metricsNamespace: string;
  readonly description?: string;
  readonly timeout: Duration;
  /** @default 256 MB */
  readonly memorySize?: number;
  /** @default 512 MiB (the Lambda minimum) */
  readonly ephemeralStorageSize?: Size;
  /** Handler configuration; Powertools and source-map variables are added here. */
  readonly environment?: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN, like any log group */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** @default 'INFO' */
  readonly logLevel?: PowertoolsLogLevel;
  /** @default - unreserved */
  readonly reservedConcurrentExecutions?: number;
  /** Node.js options after the house's `--enable-source-maps` (only those NODE_OPTIONS accepts). */
  readonly nodeOptions?: readonly string[];
}

/**
 * A NodejsFunction with the house defaults fixed, so every handler is built and observed the same way:
 * arm64 (Graviton: cheaper per GB-second), Node.js 22, a minified local-esbuild bundle with source maps
 * enabled at run time, an explicit log group with retention, and Powertools environment.
 *
 * The AWS SDK v3 is bundled rather than taken from the runtime: the handlers are tested against the
 * pinned SDK versions in package-lock.json, and the runtime's SDK changes underneath a deployed function
 * (checksum and retry defaults have changed between minor versions). Bundling makes the deployed code
 * the tested code, at the cost of a larger bundle and a slightly longer cold start.
 */
export class HouseFunction extends NodejsFunction {
  /** The function's own execution role (also `role`, typed here as always present). */
  public readonly executionRole: iam.Role;

  constructor(scope: Construct, id: string, props: HouseFunctionProps) {
    // The log group exists before the function so retention and removal are ours, not Lambda's default
    // "never expire" group created on first invocation.
    const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole, whose log permissions cover every log group
    // in the account: this one may write only to the function's own log group.
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${scope.node.path}/${id}`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: HOUSE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize ?? 256,
      ephemeralStorageSize: props.ephemeralStorageSize,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      logGroup,
      role,
      // Powertools Logger writes structured JSON itself and reads POWERTOOLS_LOG_LEVEL; X-Ray tracing is
      // off because no handler uses the Powertools tracer and the service segment alone adds nothing.
      tracing: lambda.Tracing.DISABLED,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: ['--enable-source-maps', ...(props.nodeOptions ?? [])].join(' '),
      },
      bundling: {
        // Never Docker: esbuild is a devDependency, so CDK bundles locally.
        forceDockerBundling: false,
        format: OutputFormat.CJS,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        // Stack traces need file/line mappings, not the sources themselves: keep the asset small.
        sourcesContent: false,
        bundleAwsSDK: true,
      },
    });
    this.executionRole = role;
  }
}
