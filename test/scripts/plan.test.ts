import {
  CATEGORIES,
  DEFAULT_CATEGORIES,
  InvalidInputError,
  expectations,
  findTag,
  newMarker,
  newPassword,
  parseCategories,
  parseMarker,
  runNames,
  sqlBlocks,
  type PlanInput,
} from '../../scripts/audit-analysis/plan';

const MARKER = 'auditlab_20261125132240_3a35e43e';
const input: PlanInput = {
  marker: MARKER,
  database: 'sbtest',
  userHost: '%',
  authPassword: 'Aa9aaaaaaaaaaaaaaaa1',
  oltpPassword: 'Aa9bbbbbbbbbbbbbbbb2',
  privPassword: 'Aa9cccccccccccccccc3',
};

describe('run marker', () => {
  test('is built from the UTC start time and random bytes, and parses back', () => {
    const marker = newMarker(new Date('2026-11-25T13:22:40.999Z'), Buffer.from([0x3a, 0x35, 0xe4, 0x3e]));
    expect(marker).toBe(MARKER);
    expect(parseMarker(marker)).toEqual({ marker, startedAtMs: Date.parse('2026-11-25T13:22:40Z'), runId: '3a35e43e' });
  });

  test('fresh markers differ and are 32 characters', () => {
    const a = newMarker();
    const b = newMarker();
    expect(a).not.toBe(b);
    expect(a).toHaveLength(32);
  });

  test.each(['', 'auditlab-20261125132240-3a35e43e', 'auditlab_2026112513224_3a35e43e', 'auditlab_20261125132240_3A35E43E', `${MARKER}x`])(
    'rejects %j',
    (bad) => {
      expect(() => parseMarker(bad)).toThrow(InvalidInputError);
    },
  );
});

describe('run names', () => {
  test('users fit MySQL 8 (32 characters), the table fits 64, all derived from the marker', () => {
    const names = runNames(MARKER);
    expect(names).toEqual({
      marker: MARKER,
      authUser: 'al_3a35e43e_auth',
      oltpUser: 'al_3a35e43e_oltp',
      privUser: 'al_3a35e43e_priv',
      table: `${MARKER}_t`,
    });
    for (const user of [names.authUser, names.oltpUser, names.privUser]) expect(user.length).toBeLessThanOrEqual(32);
    expect(names.table.length).toBeLessThanOrEqual(64);
  });
});

describe('sqlBlocks', () => {
  const blocks = sqlBlocks(input);

  test('blocks come in execution order with the session that runs them', () => {
    expect(blocks.map((b) => [b.name, b.session])).toEqual([
      ['setup', 'admin'],
      ['auth-login-ok', 'auth-user'],
      ['oltp-begin', 'oltp-user'],
      ['oltp-end', 'oltp-user'],
      ['schema', 'admin'],
      ['privilege', 'admin'],
      ['reader', 'reader-admin'],
      ['cleanup', 'admin'],
    ]);
  });

  test('every statement starts with its tag comment and ends with a semicolon', () => {
    for (const block of blocks) {
      const statements = block.sql.split(/;\n/).filter((s) => s !== '');
      for (const statement of statements) {
        const tag = findTag(statement, MARKER);
        expect(tag?.category).toBe(block.category);
        expect(statement.startsWith(`/* ${MARKER}:${block.category}:`)).toBe(true);
      }
      expect(block.sql.endsWith(';\n')).toBe(true);
    }
  });

  test('the accounts, grants and table use the run names, database and host', () => {
    const all = blocks.map((b) => b.sql).join('');
    expect(all).toContain(`CREATE USER 'al_3a35e43e_auth'@'%' IDENTIFIED BY '${input.authPassword}'`);
    expect(all).toContain("GRANT SELECT, INSERT, UPDATE, DELETE ON `sbtest`.* TO 'al_3a35e43e_oltp'@'%'");
    expect(all).toContain(`CREATE TABLE \`${MARKER}_t\``);
    expect(all).toContain("REVOKE SELECT ON `sbtest`.* FROM 'al_3a35e43e_priv'@'%'");
  });

  test('only the chosen categories are written', () => {
    expect(sqlBlocks(input, ['setup', 'cleanup']).map((b) => b.name)).toEqual(['setup', 'cleanup']);
  });

  test.each([
    [{ authPassword: "Aa9'; DROP TABLE x; --" }, 'auth password'],
    [{ oltpPassword: 'short' }, 'oltp password'],
    [{ database: 'sb`test' }, 'database name'],
    [{ userHost: "%' OR 1" }, 'user host'],
    [{ marker: 'nope' }, 'not a run marker'],
  ])('rejects unsafe input %j', (override, message) => {
    expect(() => sqlBlocks({ ...input, ...override })).toThrow(message);
  });
});

describe('expectations', () => {
  test('every tagged statement of the selected categories is expected, and nothing else is tagged', () => {
    for (const categories of [[...CATEGORIES], [...DEFAULT_CATEGORIES]]) {
      const tagsWritten = sqlBlocks(input, categories)
        .flatMap((b) => b.sql.split(';\n'))
        .map((s) => findTag(s, MARKER))
        .filter((t) => t !== undefined)
        .map((t) => `${t.category}/${t.step}`);
      const statementExpectations = expectations(MARKER, { categories })
        .filter((e) => e.rule.kind === 'statement')
        .map((e) => `${e.category}/${e.id}`);
      expect(statementExpectations).toEqual(tagsWritten);
    }
  });

  test('statements of the run users must come from those users', () => {
    const byId = new Map(expectations(MARKER).map((e) => [`${e.category}/${e.id}`, e.rule]));
    expect(byId.get('authentication/login-ok')).toMatchObject({ kind: 'statement', username: 'al_3a35e43e_auth' });
    expect(byId.get('oltp/begin')).toMatchObject({ kind: 'statement', username: 'al_3a35e43e_oltp' });
    expect(byId.get('schema/create-table')).toMatchObject({ kind: 'statement', username: undefined });
  });

  test('table-event expectations can be switched off', () => {
    const withTables = expectations(MARKER).filter((e) => e.rule.kind === 'table-event');
    expect(withTables.map((e) => `${e.category}/${e.id}`)).toEqual([
      'oltp/table-read',
      'oltp/table-write',
      'schema/table-create',
      'schema/table-alter',
      'schema/table-write',
      'schema/table-drop',
    ]);
    expect(expectations(MARKER, { tableEvents: false }).some((e) => e.rule.kind === 'table-event')).toBe(false);
  });
});

describe('helpers', () => {
  test('newPassword is alphanumeric with upper, lower and digit', () => {
    const password = newPassword();
    expect(password).toMatch(/^[A-Za-z0-9]{27}$/);
    expect(password).toMatch(/[A-Z]/);
    expect(password).toMatch(/[a-z]/);
    expect(password).toMatch(/\d/);
  });

  test('parseCategories accepts known names and rejects others', () => {
    expect(parseCategories('setup, oltp,reader')).toEqual(['setup', 'oltp', 'reader']);
    expect(() => parseCategories('setup,bogus')).toThrow("unknown category 'bogus'");
  });

  test('findTag ignores other markers and untagged text', () => {
    expect(findTag(`/* ${MARKER}:schema:drop-table */ DROP TABLE t`, MARKER)).toEqual({ category: 'schema', step: 'drop-table' });
    expect(findTag('/* auditlab_20261125132240_00000000:schema:drop-table */ DROP TABLE t', MARKER)).toBeUndefined();
    expect(findTag(`SELECT '${MARKER}'`, MARKER)).toBeUndefined();
  });
});
