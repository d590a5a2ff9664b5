/**
 * Bundle figures: the three handler bundles exactly as the stack ships them (BackupPipelineStack
 * synthesized with bundling: HouseFunction's esbuild options, read from the cloud assembly's asset
 * folders), their sizes, and their module init time in a fresh Node process against an empty
 * handler built with the same esbuild options.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { App, CfnElement } from 'aws-cdk-lib';
import { build } from 'esbuild';
import { BackupPipelineStack } from '../../lib/stacks/backup-pipeline-stack';
import { FUNCTION_ROLES, FunctionRole } from '../local-lab/stack-definition';
import { median } from './figures';

const REPO_ROOT = join(__dirname, '..', '..');

export interface BundleFile {
  name: string;
  /** index.js of the asset. */
  path: string;
  bytes: number;
  /** index.js gzip-compressed (level 9): about what the deployment zip holds for it. */
  gzipBytes: number;
  sourceMapBytes: number;
}

/** Synthesizes the stack with bundling into `outdir` and returns each function's index.js. */
export function synthesizeBundles(outdir: string): Record<FunctionRole, BundleFile> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  const app = new App({ outdir, context: { ...cdkJson.context } });
  // Bundles do not depend on the stack's props (only the template does): the defaults are enough.
  const stack = new BackupPipelineStack(app, 'BenchBackupPipeline', { env: { account: '111111111111', region: 'us-east-1' } });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, { Properties?: { Code?: { S3Key?: unknown } } }>;
  };
  const bundles = {} as Record<FunctionRole, BundleFile>;
  for (const role of FUNCTION_ROLES) {
    const logicalId = stack.getLogicalId(stack.pipeline[role].node.defaultChild as CfnElement);
    const key = template.Resources[logicalId]?.Properties?.Code?.S3Key;
    if (typeof key !== 'string') throw new Error(`${role}: no asset key in the template`);
    const dir = join(assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
    bundles[role] = describeBundle(role, join(dir, 'index.js'));
  }
  return bundles;
}

function describeBundle(name: string, path: string): BundleFile {
  const code = readFileSync(path);
  let sourceMapBytes = 0;
  try {
    sourceMapBytes = statSync(`${path}.map`).size;
  } catch {
    // No map next to it: reported as 0.
  }
  return { name, path, bytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length, sourceMapBytes };
}

/** An empty handler bundled with HouseFunction's esbuild options (cjs, node22, minified, source map). */
export async function buildEmptyBundle(dir: string): Promise<BundleFile> {
  const entry = join(dir, 'empty-handler.ts');
  writeFileSync(entry, 'export const handler = async (): Promise<void> => {};\n');
  const outfile = join(dir, 'empty', 'index.js');
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    logLevel: 'warning',
  });
  return describeBundle('empty', outfile);
}

export interface InitSample {
  /** require() of the bundle: the module's own init (imports, clients, configuration). */
  requireMs: number;
  /** From the process's time origin to the end of require(): Node's start-up plus the module's init. */
  sinceProcessStartMs: number;
}

export interface InitFigures {
  name: string;
  runs: number;
  medianRequireMs: number;
  medianSinceProcessStartMs: number;
  samples: InitSample[];
}

const PROBE = `'use strict';
const started = process.hrtime.bigint();
require(process.argv[2]);
const requireMs = Number(process.hrtime.bigint() - started) / 1e6;
const sinceProcessStartMs = performance.now();
process.stdout.write(JSON.stringify({ requireMs, sinceProcessStartMs }), () => process.exit(0));
`;

function probeOnce(probe: string, bundle: string, env: NodeJS.ProcessEnv): Promise<InitSample> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [probe, bundle], { env, timeout: 30_000, cwd: join(bundle, '..') }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`init probe of ${bundle} failed: ${error.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as InitSample);
    });
  });
}

/**
 * Cold module init of each bundle in a fresh Node process, `runs` times, interleaved (one round runs
 * every bundle once) so that background load hits all of them alike. Each bundle runs with the
 * environment its function gets (NODE_OPTIONS=--enable-source-maps included).
 */
export async function measureInit(
  workDir: string,
  subjects: ReadonlyArray<{ name: string; path: string; env: NodeJS.ProcessEnv }>,
  runs: number,
): Promise<InitFigures[]> {
  const probe = join(workDir, 'init-probe.js');
  writeFileSync(probe, PROBE);
  const samples = new Map<string, InitSample[]>(subjects.map((subject) => [subject.name, []]));
  // One unmeasured round first: the first start of each file pays for the page cache.
  for (const subject of subjects) await probeOnce(probe, subject.path, subject.env);
  for (let round = 0; round < runs; round++) {
    for (const subject of subjects) samples.get(subject.name)?.push(await probeOnce(probe, subject.path, subject.env));
  }
  return subjects.map((subject) => {
    const taken = samples.get(subject.name) ?? [];
    return {
      name: subject.name,
      runs: taken.length,
      medianRequireMs: median(taken.map((sample) => sample.requireMs)),
      medianSinceProcessStartMs: median(taken.map((sample) => sample.sinceProcessStartMs)),
      samples: taken,
    };
  });
}
