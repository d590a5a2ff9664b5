import { drainingLine } from '../../scripts/local-lab/progress';

describe('drainingLine', () => {
  it("says which cycle is still draining, for how long, and the detector's and downloader's invocations so far", () => {
    expect(drainingLine(3, 45_000, { detector: 2, downloader: 118 })).toBe(
      '    ... cycle 3 still draining after 45.0 s: detector 2 inv, downloader 118 inv so far',
    );
  });
});
