import { CrmError } from '../../plugin/http/errors';
import { bucketSize, buckets, defaultConfig, parseStoredConfig, periodProblem, readModuleInput, resolvePeriod } from '../../plugin/services/dashboard-config';
import { moduleCsv, renderChart, shortValue } from '../../plugin/services/dashboard-charts';
import type { ModuleData } from '../../plugin/services/dashboard-data';

describe('module periods (D3)', () => {
  test.each([
    [{ kind: 'this_month' }, '2026-02-14', '2026-02-01', '2026-02-28'],
    [{ kind: 'this_month' }, '2028-02-29', '2028-02-01', '2028-02-29'],
    [{ kind: 'this_quarter' }, '2026-11-23', '2026-10-01', '2026-12-31'],
    [{ kind: 'this_quarter' }, '2026-01-01', '2026-01-01', '2026-03-31'],
    [{ kind: 'this_year' }, '2026-11-23', '2026-01-01', '2026-12-31'],
    [{ kind: 'last_days', days: 30 }, '2026-03-01', '2026-01-31', '2026-03-01'],
    [{ kind: 'next_days', days: 365 }, '2026-11-23', '2026-11-23', '2027-11-22'],
    [{ kind: 'custom', from: '2031-01-01', to: '2031-06-30' }, '2026-11-23', '2031-01-01', '2031-06-30'],
  ] as const)('%j on %s covers %s – %s', (period, today, from, to) => {
    expect(resolvePeriod(period, today)).toMatchObject({ from, to });
  });

  test('buckets cut a period into calendar months or quarters, clipped to the period', () => {
    expect(buckets({ from: '2026-11-15', to: '2027-02-10', label: '' }, 'month').map((b) => [b.key, b.from, b.to])).toEqual([
      ['2026-11', '2026-11-15', '2026-11-30'], ['2026-12', '2026-12-01', '2026-12-31'], ['2027-01', '2027-01-01', '2027-01-31'], ['2027-02', '2027-02-01', '2027-02-10'],
    ]);
    expect(buckets({ from: '2026-11-23', to: '2027-11-22', label: '' }, 'quarter').map((b) => b.key)).toEqual(['2026 Q4', '2027 Q1', '2027 Q2', '2027 Q3', '2027 Q4']);
    expect(buckets({ from: '2026-11-23', to: '2028-01-01', label: '' }, 'year').map((b) => [b.key, b.from, b.to])).toEqual([
      ['2026', '2026-11-23', '2026-12-31'], ['2027', '2027-01-01', '2027-12-31'], ['2028', '2028-01-01', '2028-01-01'],
    ]);
  });

  test('a period too long for 60 buckets of the finest size is cut into coarser ones, never truncated', () => {
    const period = (from: string, to: string) => ({ from, to, label: '' });
    expect(bucketSize(period('2021-01-01', '2025-12-31'), 'month')).toBe('month');
    expect(bucketSize(period('2021-01-01', '2026-01-01'), 'month')).toBe('quarter');
    expect(bucketSize(period('2021-01-01', '2026-12-31'), 'quarter')).toBe('quarter');
    expect(bucketSize(period('1900-01-01', '2999-12-31'), 'month')).toBe('year');
    const tenYears = buckets(period('2021-06-15', '2031-06-20'), bucketSize(period('2021-06-15', '2031-06-20'), 'month'));
    expect(tenYears).toHaveLength(41);
    expect([tenYears[0].from, tenYears[40].to]).toEqual(['2021-06-15', '2031-06-20']);
  });
});

describe('module configuration', () => {
  const errorsOf = (fn: () => unknown): Record<string, string> => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(CrmError);
      expect((err as CrmError).status).toBe(422);
      return (err as CrmError).fieldErrors;
    }
    throw new Error('expected a 422');
  };

  test('a custom range needs both ends, in order, at most ten years', () => {
    const cfg = defaultConfig('funnel');
    expect(errorsOf(() => readModuleInput('funnel', cfg, { period: 'custom', from: '2031-02-01', to: '2031-01-31' }))).toEqual({ to: 'The period ends before it starts' });
    expect(Object.keys(errorsOf(() => readModuleInput('funnel', cfg, { period: 'custom' })))).toEqual(['from', 'to']);
    expect(errorsOf(() => readModuleInput('funnel', cfg, { period: 'custom', from: '2020-01-01', to: '2040-01-01' }))).toEqual({ to: 'The period is at most ten years' });
    expect(errorsOf(() => readModuleInput('funnel', cfg, { period: 'last_days', days: '0' }))).toEqual({ days: 'Days must be a whole number from 1 to 3660' });
    expect(readModuleInput('funnel', cfg, { period: 'custom', from: '2031-01-01', to: '2031-01-01' }).config.period).toEqual({ kind: 'custom', from: '2031-01-01', to: '2031-01-01' });
  });

  test('a custom range lies within the years 1900–2999', () => {
    const cfg = defaultConfig('revenue');
    const range = 'must be between 1900-01-01 and 2999-12-31';
    expect(errorsOf(() => readModuleInput('revenue', cfg, { period: 'custom', from: '9999-01-01', to: '9999-12-31' }))).toEqual({ from: `From ${range}`, to: `To ${range}` });
    expect(errorsOf(() => readModuleInput('revenue', cfg, { period: 'custom', from: '1899-12-31', to: '1900-01-01' }))).toEqual({ from: `From ${range}` });
    expect(readModuleInput('revenue', cfg, { period: 'custom', from: '2990-01-01', to: '2999-12-31' }).config.period).toEqual({ kind: 'custom', from: '2990-01-01', to: '2999-12-31' });
  });

  test('a stored period is checked by the rules of the form before it is drawn', () => {
    expect(periodProblem({ kind: 'custom', from: '2031-01-01', to: '2031-12-31' })).toBeNull();
    expect(periodProblem({ kind: 'this_year' })).toBeNull();
    expect(periodProblem({ kind: 'last_days' })).toBeNull();
    expect(periodProblem({ kind: 'custom', from: '9999-01-01', to: '9999-12-31' })).toBe('From must be between 1900-01-01 and 2999-12-31');
    expect(periodProblem({ kind: 'custom', from: '2031-01-01' })).toBe('To is required for a custom range');
    expect(periodProblem({ kind: 'custom', from: 20310101, to: '2031-12-31' } as never)).toBe('From is required for a custom range');
    expect(periodProblem({ kind: 'next_days', days: 1e9 })).toBe('Days must be a whole number from 1 to 3660');
    expect(periodProblem({ kind: 'custom', from: '2000-01-01', to: '2031-12-31' })).toBe('The period is at most ten years');
  });

  test('filters are those of the module type; a field that does not exist is refused, never ignored', () => {
    const cfg = defaultConfig('activities');
    expect(errorsOf(() => readModuleInput('activities', cfg, { filter_owner_id: '3' }))).toEqual({ filter_owner_id: 'Sales activities cannot be filtered by "owner_id"' });
    expect(errorsOf(() => readModuleInput('funnel', defaultConfig('funnel'), { filter_currency: 'euro' }))).toEqual({ filter_currency: 'Currency must be a code such as EUR' });
    expect(readModuleInput('funnel', defaultConfig('funnel'), { filter_currency: 'usd', filter_owner_id: '4', filter_account_id: '' }).config.filters).toEqual({ currency: 'USD', owner_id: 4 });
    expect(errorsOf(() => readModuleInput('funnel', defaultConfig('funnel'), { chart: 'pie' }))).toEqual({ chart: 'Chart must be one of: funnel, bars, table' });
  });

  test('a record filter sent as “kept” keeps the module’s own value (or none); only account and project filters take it', () => {
    const filtered = { ...defaultConfig('funnel'), filters: { account_id: 12, project_id: 3, owner_id: 4 } };
    expect(readModuleInput('funnel', filtered, { filter_account_id: 'kept', filter_project_id: 'kept', filter_owner_id: '5' }).config.filters).toEqual({ account_id: 12, project_id: 3, owner_id: 5 });
    expect(readModuleInput('funnel', filtered, { filter_account_id: 'kept', filter_project_id: '' }).config.filters).toEqual({ account_id: 12 });
    expect(readModuleInput('funnel', defaultConfig('funnel'), { filter_account_id: 'kept' }).config.filters).toEqual({});
    expect(errorsOf(() => readModuleInput('funnel', filtered, { filter_owner_id: 'kept' }))).toEqual({ filter_owner_id: 'Owner is not valid' });
  });

  test('a stored config is read back defensively', () => {
    expect(parseStoredConfig('funnel', 'not json')).toEqual(defaultConfig('funnel'));
    expect(parseStoredConfig('funnel', JSON.stringify({ chart: 'pie', filters: { owner_id: 3, evil: 1 }, people: 'x' }))).toMatchObject({ chart: 'funnel', filters: { owner_id: 3 }, people: 'auto' });
  });
});

describe('charts and CSV (D2)', () => {
  const data: ModuleData = {
    type: 'won_by_person', period: { from: '2031-01-01', to: '2031-12-31', label: '2031' }, currency: 'EUR',
    columns: [{ key: 'count', label: 'Won deals', kind: 'count' }, { key: 'amount', label: 'Won amount', kind: 'money' }],
    series: ['amount'], rows: [{ key: '1', label: '<script>x</script>', values: { count: 2, amount: 123_456 }, link: null }, { key: '2', label: '=HYPERLINK("x")', values: { count: 1, amount: -500 }, link: null }],
    totals: { count: 3, amount: 122_956 }, chart: 'bars', link: null, conversion: null, notes: [], people: 'all',
  };

  test('SVG is escaped, drawn with classes only (no inline style), a bar per row', () => {
    const svg = renderChart(data, 'Won "deals"');
    expect(svg.startsWith('<svg class="chart bars"')).toBe(true);
    expect(svg).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(svg).not.toContain('<script>');
    expect(svg).not.toContain('style=');
    expect(svg).toContain('aria-label="Won &quot;deals&quot;"');
    expect(svg.match(/<rect x="118" y="\d+" width="[\d.]+" height="12" class="series-0"\/>/g)).toHaveLength(2);
    expect(renderChart({ ...data, chart: 'table' }, 'x')).toBe('');
    expect(renderChart({ ...data, chart: 'line' }, 'x')).toContain('<polyline');
    expect(renderChart({ ...data, chart: 'funnel' }, 'x')).toContain('<polygon');
  });

  test('CSV: plain numbers in major units, RFC 4180 quoting, formulas defused, baseline columns', () => {
    const csv = moduleCsv(data, { name: 'Q1', data: { ...data, rows: [{ ...data.rows[0], values: { count: 1, amount: 100 } }] } });
    expect(csv.split('\r\n')).toEqual([
      'Label,Won deals,Won amount (EUR),Won amount (Q1)', '<script>x</script>,2,1234.56,1.00', `"'=HYPERLINK(""x"")",1,-5.00,`, 'Total,3,1229.56', '',
    ]);
    expect(shortValue(1_234_567_00, 'money', 'EUR')).toBe('1.2M');
    expect(shortValue(2500, 'percent', 'EUR')).toBe('25 %');
  });
});
