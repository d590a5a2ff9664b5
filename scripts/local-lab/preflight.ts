/**
 * The lab needs MariaDB (server + install tool + client), sysbench and moto_server. Debian puts
 * mariadbd in /usr/sbin, which is not on an unprivileged user's PATH, so the sbin folders are searched
 * too.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const APT_PACKAGES = ['mariadb-server', 'sysbench'] as const;
export const APT_INSTALL_COMMAND = `apt-get update && apt-get install -y ${APT_PACKAGES.join(' ')}`;
export const MOTO_INSTALL_COMMAND = 'pip install "moto[server]==5.2.1"';

export interface DatabaseTools {
  mariadbd: string;
  installDb: string;
  client: string;
  sysbench: string;
}

export interface Tools {
  database?: DatabaseTools;
  motoServer?: string;
}

const SBIN_FOLDERS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function findExecutable(name: string): string | undefined {
  const folders = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN_FOLDERS];
  for (const folder of folders) {
    const candidate = join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function findDebianTools(): Partial<DatabaseTools> {
  return {
    mariadbd: findExecutable('mariadbd') ?? findExecutable('mysqld'),
    installDb: findExecutable('mariadb-install-db') ?? findExecutable('mysql_install_db'),
    client: findExecutable('mariadb') ?? findExecutable('mysql'),
    sysbench: findExecutable('sysbench'),
  };
}

export class PreflightError extends Error {}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Returns the tool paths, installing the Debian packages first when they are missing and the lab runs
 * as root; otherwise throws a PreflightError carrying the exact command to run.
 */
export function preflight(need: { database: boolean; moto: boolean }, log: (line: string) => void): Tools {
  const tools: Tools = {};
  if (need.database) tools.database = ensureDatabaseTools(log);
  if (need.moto) {
    tools.motoServer = findExecutable('moto_server');
    if (!tools.motoServer) {
      throw new PreflightError(`moto_server is not on PATH; install it with:\n  ${MOTO_INSTALL_COMMAND}`);
    }
  }
  return tools;
}

function ensureDatabaseTools(log: (line: string) => void): DatabaseTools {
  let debian = findDebianTools();
  const missing = (): string[] => Object.entries(debian).filter(([, path]) => !path).map(([tool]) => tool);
  if (missing().length > 0) {
    if (!isRoot()) {
      throw new PreflightError(
        `missing ${missing().join(', ')}; install the Debian packages as root:\n  sudo sh -c '${APT_INSTALL_COMMAND}'`,
      );
    }
    log(`[preflight] missing ${missing().join(', ')}: running ${APT_INSTALL_COMMAND}`);
    execFileSync('sh', ['-c', APT_INSTALL_COMMAND], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    debian = findDebianTools();
    if (missing().length > 0) throw new PreflightError(`still missing after apt-get: ${missing().join(', ')}`);
  }
  return debian as DatabaseTools;
}

export const runsAsRoot = isRoot;
