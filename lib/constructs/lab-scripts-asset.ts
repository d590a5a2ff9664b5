import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, BundlingOptions, DockerImage, ILocalBundling } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { buildSync } from 'esbuild';
import { Construct } from 'constructs';

const SCRIPTS_DIR = path.join(__dirname, '..', '..', 'scripts');

/** Shell scripts shipped to the lab host as they are. */
export const LAB_SHELL_SCRIPTS = ['setup_ec2.sh', 'setup_sysbench.sh', 'test_audit_logs.sh'] as const;
/** Helper directory the shell scripts source (`lib/common.sh`). */
export const LAB_SCRIPT_LIB_DIR = 'lib';
/** The TypeScript audit-log analyser, bundled into one file the host runs with `node`. */
export const AUDIT_ANALYSER_ENTRY = path.join('audit-analysis', 'cli.ts');
export const AUDIT_ANALYSER_BUNDLE = 'audit-analysis.js';
/** setup_ec2.sh installs Node.js 22 on the host and refuses anything older than 20. */
const HOST_NODE_TARGET = 'node20';

/**
 * Builds the lab-script bundle on this machine (no Docker): the shell scripts, their lib/ directory and
 * the analyser bundled by esbuild. Missing sources fail the synth instead of shipping a partial bundle.
 */
export class LabScriptsBundler implements ILocalBundling {
  constructor(private readonly sourceDir: string = SCRIPTS_DIR) {}

  tryBundle(outputDir: string): boolean {
    for (const script of LAB_SHELL_SCRIPTS) {
      fs.copyFileSync(this.source(script), path.join(outputDir, script));
      fs.chmodSync(path.join(outputDir, script), 0o755);
    }
    fs.cpSync(this.source(LAB_SCRIPT_LIB_DIR), path.join(outputDir, LAB_SCRIPT_LIB_DIR), { recursive: true });
    buildSync({
      entryPoints: [this.source(AUDIT_ANALYSER_ENTRY)],
      outfile: path.join(outputDir, AUDIT_ANALYSER_BUNDLE),
      bundle: true,
      platform: 'node',
      target: HOST_NODE_TARGET,
      format: 'cjs',
      logLevel: 'error',
    });
    return true;
  }

  private source(relative: string): string {
    const file = path.join(this.sourceDir, relative);
    if (!fs.existsSync(file)) throw new Error(`lab scripts bundle: ${file} does not exist`);
    return file;
  }
}

/** The lab scripts as one zipped S3 asset; the lab host downloads and unzips it at boot. */
export class LabScriptsAsset extends Construct {
  readonly asset: s3assets.Asset;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const bundling: BundlingOptions = {
      local: new LabScriptsBundler(),
      // Never pulled: local bundling always succeeds or throws. The property is mandatory.
      image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:20-alpine'),
    };
    this.asset = new s3assets.Asset(this, 'Bundle', {
      path: SCRIPTS_DIR,
      bundling,
      assetHashType: AssetHashType.OUTPUT,
    });
  }
}
