import { ConfigError, parseOptions } from '../../scripts/local-lab/rds-endpoint/config';

const minimal = { clusters: [], parameterGroups: {} };

describe('rds-endpoint config file', () => {
  it("resolves the state file and the retain folder against the config file's folder", () => {
    const options = parseOptions({ ...minimal, stateFile: 'state/rds.json', retainDir: '../retained' }, '/lab/config');
    expect(options.stateFile).toBe('/lab/config/state/rds.json');
    expect(options.retainDir).toBe('/lab/retained');
    expect(parseOptions({ ...minimal, retainDir: '/abs/retained' }, '/lab/config').retainDir).toBe('/abs/retained');
    expect(parseOptions(minimal, '/lab/config').retainDir).toBeUndefined();
  });

  it('refuses a retain folder that is not a string, naming the key', () => {
    expect(() => parseOptions({ ...minimal, retainDir: 42 }, '/lab')).toThrow(ConfigError);
    expect(() => parseOptions({ ...minimal, retainDir: 42 }, '/lab')).toThrow(/config\.retainDir/);
  });
});
