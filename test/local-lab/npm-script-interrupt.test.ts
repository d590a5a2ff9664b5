/**
 * The npm scripts start the lab's commands as `node --import tsx <script>`, not through the `tsx` CLI:
 * that CLI is a parent process that relays Ctrl-C and SIGKILLs its child when the child has not
 * answered within ~60 ms, so a lab that was busy at that moment died before its cleanup handlers ran
 * and left MariaDB, moto_server and sysbench running (seen once in a soak run).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../scripts/local-lab/processes';

const REPO_ROOT = join(__dirname, '..', '..');
const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** How the npm script `name` starts its TypeScript entry point (the command before the path). */
function runnerOf(name: string, entry: string): string {
  const command = scripts[name] ?? '';
  const at = command.indexOf(entry);
  if (at < 0) throw new Error(`npm script ${name} does not run ${entry}: ${command}`);
  return command.slice(0, at).trim();
}

test.each([
  ['lab', 'scripts/local-lab/lab.ts'],
  ['bench', 'scripts/bench/bench.ts'],
  ['test:e2e', 'scripts/local-lab/e2e/run.ts'],
])('Ctrl-C during busy work: the %s runner leaves no child behind', async (name, entry) => {
  const runner = runnerOf(name, entry).split(' && ').pop() as string;
  const command = spawn('sh', ['-c', `exec ${runner} ${join(__dirname, 'fixtures', 'busy-when-interrupted.ts')}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` },
    detached: true, // its own process group, as a terminal's foreground job
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let sleeperPid: number | undefined;
  try {
    sleeperPid = await new Promise<number>((resolve, reject) => {
      let output = '';
      command.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ready (\d+)/.exec(output);
        if (match) resolve(Number(match[1]));
      });
      command.once('exit', () => reject(new Error(`exited before it was ready: ${output}`)));
    });
    const exited = new Promise<number | null>((resolve) => command.once('exit', (code) => resolve(code)));
    process.kill(-(command.pid as number), 'SIGINT'); // what Ctrl-C does: the whole foreground group
    expect(await exited).toBe(130);
    expect(isAlive(sleeperPid)).toBe(false);
  } finally {
    if (sleeperPid !== undefined && isAlive(sleeperPid)) process.kill(sleeperPid, 'SIGKILL');
    if (command.exitCode === null) process.kill(-(command.pid as number), 'SIGKILL');
  }
}, 20_000);
