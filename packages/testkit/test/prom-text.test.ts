import { describe, expect, it } from 'vitest';

import { PromScrape } from '../src/prom-text.js';

const PAGE = `# HELP jobs_total Jobs by result
# TYPE jobs_total counter
jobs_total{result="done",code="none"} 3
jobs_total{result="retry",code="locked"} 1
# HELP wait_seconds Wait
# TYPE wait_seconds histogram
wait_seconds_bucket{le="0.1",host="a:1"} 2
wait_seconds_bucket{le="+Inf",host="a:1"} 4
wait_seconds_sum{host="a:1"} 1.5
wait_seconds_count{host="a:1"} 4
# TYPE up gauge
up{note="say \\"hi\\"\\n"} 1
# TYPE lag gauge
lag Nan
`;

describe('PromScrape', () => {
  it('reads families, labels (escaped), histogram parts and sums', () => {
    const page = new PromScrape(PAGE);
    expect(page.families.get('jobs_total')).toMatchObject({ type: 'counter', help: 'Jobs by result' });
    expect(page.value('jobs_total')).toBe(4);
    expect(page.value('jobs_total', { result: 'retry' })).toBe(1);
    expect(page.value('jobs_total', { result: 'dropped' })).toBeUndefined();
    expect(page.value('wait_seconds_count', { host: 'a:1' })).toBe(4);
    expect(page.samples('wait_seconds_bucket').map((s) => s.labels.le)).toEqual(['0.1', '+Inf']);
    expect(page.samples('up')[0]?.labels.note).toBe('say "hi"\n');
    expect(page.value('lag')).toBeNaN();
  });

  it.each([
    ['a sample of an undeclared family', 'nobody_declared 1'],
    ['a value that is not a number', '# TYPE x gauge\nx one'],
    ['malformed labels', '# TYPE x gauge\nx{host=a} 1'],
    ['an unknown type', '# TYPE x meter'],
    ['a histogram part of a gauge', '# TYPE x gauge\nx_bucket{le="1"} 1'],
  ])('refuses %s', (_why, text) => {
    expect(() => new PromScrape(text)).toThrow(/metrics line/);
  });
});
