/**
 * Captures what Powertools Metrics prints (CloudWatch Embedded Metric Format, one JSON line per flush
 * on stdout) so tests assert the metrics exactly as CloudWatch would read them. Metrics must be
 * enabled (POWERTOOLS_METRICS_DISABLED=false) before the handler module is loaded.
 */
export interface EmfMetricDefinition {
  Name: string;
  Unit: string;
}

export interface EmfBlob {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: EmfMetricDefinition[] }>;
  };
  [key: string]: unknown;
}

export class EmfCapture {
  readonly blobs: EmfBlob[] = [];
  private readonly spy: jest.SpyInstance;

  constructor() {
    const write = process.stdout.write.bind(process.stdout);
    this.spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString();
      let emf = false;
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as Partial<EmfBlob>;
        if (parsed._aws?.CloudWatchMetrics) {
          this.blobs.push(parsed as EmfBlob);
          emf = true;
        }
      }
      return emf ? true : (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write);
  }

  restore(): void {
    this.spy.mockRestore();
  }

  clear(): void {
    this.blobs.length = 0;
  }

  /** Every value recorded for `name` across the captured flushes (EMF keeps repeated values as a list). */
  values(name: string): number[] {
    return this.blobs.flatMap((blob) => {
      const value = blob[name];
      if (value === undefined) return [];
      return Array.isArray(value) ? (value as number[]) : [value as number];
    });
  }

  /** The unit, namespace and dimensions each flush declared for `name`. */
  definitions(name: string): Array<{ unit: string; namespace: string; dimensions: string[][]; dimensionValues: Record<string, unknown> }> {
    return this.blobs.flatMap((blob) =>
      blob._aws.CloudWatchMetrics.flatMap((directive) =>
        directive.Metrics.filter((metric) => metric.Name === name).map((metric) => ({
          unit: metric.Unit,
          namespace: directive.Namespace,
          dimensions: directive.Dimensions,
          dimensionValues: Object.fromEntries(directive.Dimensions.flat().map((dimension) => [dimension, blob[dimension]])),
        })),
      ),
    );
  }

  names(): string[] {
    return [...new Set(this.blobs.flatMap((blob) => blob._aws.CloudWatchMetrics.flatMap((d) => d.Metrics.map((m) => m.Name))))].sort();
  }
}
