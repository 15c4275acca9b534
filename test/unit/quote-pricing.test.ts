import { percentOf } from '../../plugin/services/money';
import {
  divideRounded, lineDiscount, lineGross, parsePercent, parseQuantity, percentText, priceLine, priceQuote, quantityText, type LineInput,
} from '../../plugin/services/quote-pricing';

const line = (over: Partial<LineInput>): LineInput => ({
  kind: 'manual', quantity_milli: 1000, unit_price_minor: 10_000, discount_kind: null, discount_value: 0, tax_rate_bp: 2500, ...over,
});

describe('the one rounding rule: half away from zero', () => {
  test.each([
    [5n, 10n, 1n], [4n, 10n, 0n], [15n, 10n, 2n], [25n, 10n, 3n], [-5n, 10n, -1n], [-15n, 10n, -2n], [-14n, 10n, -1n], [0n, 7n, 0n],
    [1n, 3n, 0n], [2n, 3n, 1n], [-2n, 3n, -1n],
  ])('%s / %s → %s', (n, d, expected) => expect(divideRounded(n, d)).toBe(expected));

  test('exact for amounts far beyond 2^53', () => {
    expect(divideRounded(10n ** 24n + 500n, 1000n)).toBe(10n ** 21n + 1n);
    expect(divideRounded(10n ** 24n + 499n, 1000n)).toBe(10n ** 21n);
  });
});

describe('line gross = round(quantity_milli × unit_price_minor / 1000)', () => {
  test.each([
    [1000, 48_000, 48_000], // 1 × 480.00
    [1500, 120_000, 180_000], // 1.5 days × 1 200.00
    [1, 1, 0], // 0.001 × 0.01 = 0.00001 → 0
    [500, 1, 1], // 0.5 × 0.01 = 0.005 → 0.01 (half away from zero)
    [499, 1, 0],
    [333, 100, 33], // 0.333 × 1.00 = 0.333
    [2500, 999, 2498], // 2.5 × 9.99 = 24.975 → 24.98
    [1_000_000_000, 100_000, 100_000_000_000],
    [1234, 5678, 7007], // 7006.652 → 7007
    [1000, 0, 0],
  ])('%i milli × %i minor → %i', (q, p, gross) => expect(lineGross(q, p)).toBe(gross));

  test('the plain-number path agrees with exact BigInt division everywhere, up to the largest quantities and prices', () => {
    const exact = (q: number, p: number) => Number(divideRounded(BigInt(q) * BigInt(p), 1000n));
    // A fixed pseudo-random walk (deterministic), plus the edges of the fast path and of the accepted range.
    let seed = 42;
    const next = (max: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor((seed / 2147483648) * max); };
    const cases: Array<[number, number]> = [[4_503_599_627_369, 999], [4_503_599_627_370, 1000], [1_000_000_000, 4_503_599], [1_000_000_000, 100_000_000_000], [-7, 500], [999, -1001]];
    for (let i = 0; i < 20_000; i++) cases.push([next(1_000_000_001), next(i % 2 ? 100_000 : 100_000_000_001)]);
    for (const [q, p] of cases) expect([q, p, lineGross(q, p)]).toEqual([q, p, exact(q, p)]);
  });
});

describe('discounts', () => {
  test.each([
    [10_000, 'percent', 1000, 1000], [999, 'percent', 1000, 100], [995, 'percent', 1000, 100], [994, 'percent', 1000, 99],
    [12_345, 'percent', 1250, 1543], [10_000, 'percent', 10_000, 10_000], [10_000, 'percent', 0, 0], [1, 'percent', 5000, 1],
    [10_000, 'amount', 2_500, 2_500], [10_000, 'amount', 10_000, 10_000], [10_000, 'amount', 20_000, 10_000], [0, 'amount', 5, 0],
    [10_000, null, 5000, 0],
  ] as const)('gross %i, %s %i → %i', (gross, kind, value, expected) => {
    expect(lineDiscount(gross, kind, value)).toBe(expected);
    expect(lineDiscount(gross, kind, value)).toBeLessThanOrEqual(gross);
  });
});

describe('a line: gross, discount, net, tax, total', () => {
  test('percent discount and 25 % tax', () => {
    expect(priceLine(line({ quantity_milli: 3000, unit_price_minor: 3333, discount_kind: 'percent', discount_value: 1000 })))
      .toEqual({ gross_minor: 9999, discount_minor: 1000, net_minor: 8999, tax_minor: 2250, total_minor: 11_249 });
  });

  test('amount discount, 12.5 % tax rounds half away from zero', () => {
    // net 100.04 × 12.5 % = 12.505 → 12.51
    expect(priceLine(line({ quantity_milli: 1000, unit_price_minor: 11_004, discount_kind: 'amount', discount_value: 1000, tax_rate_bp: 1250 })))
      .toEqual({ gross_minor: 11_004, discount_minor: 1000, net_minor: 10_004, tax_minor: 1251, total_minor: 11_255 });
  });

  test('no tax, full discount', () => {
    expect(priceLine(line({ discount_kind: 'percent', discount_value: 10_000, tax_rate_bp: 0 })))
      .toEqual({ gross_minor: 10_000, discount_minor: 10_000, net_minor: 0, tax_minor: 0, total_minor: 0 });
  });

  test('the rounding item is its price: no discount, no tax, whatever is stored', () => {
    expect(priceLine(line({ kind: 'rounding', unit_price_minor: -37, discount_kind: 'percent', discount_value: 5000, tax_rate_bp: 2500 })))
      .toEqual({ gross_minor: -37, discount_minor: 0, net_minor: -37, tax_minor: 0, total_minor: -37 });
  });

  test('a bundle is one line at the bundle price', () => {
    expect(priceLine(line({ kind: 'bundle', quantity_milli: 2000, unit_price_minor: 500_000 })).gross_minor).toBe(1_000_000);
  });
});

describe('totals are the sums of the lines shown (round per line, then sum)', () => {
  test('three lines whose taxes would round differently on the total', () => {
    // Each net 0.05 at 10 % → tax 0.005 → 0.01 per line; tax on the summed net (0.15) would be 0.02 (0.015 → 0.02).
    const { lines, totals } = priceQuote([line({ unit_price_minor: 5, tax_rate_bp: 1000 }), line({ unit_price_minor: 5, tax_rate_bp: 1000 }), line({ unit_price_minor: 5, tax_rate_bp: 1000 })]);
    expect(lines.map((l) => l.tax_minor)).toEqual([1, 1, 1]);
    expect(totals).toEqual({ subtotal_minor: 15, discount_total_minor: 0, rounding_minor: 0, net_total_minor: 15, tax_total_minor: 3, total_minor: 18 });
  });

  test('discounts, mixed tax rates and a negative rounding item', () => {
    const { lines, totals } = priceQuote([
      line({ quantity_milli: 25_000, unit_price_minor: 48_000 }), // 12 000.00, tax 3 000.00
      line({ quantity_milli: 1500, unit_price_minor: 120_000, discount_kind: 'amount', discount_value: 30_000, tax_rate_bp: 1200 }), // 1 800 − 300 = 1 500, tax 180
      line({ quantity_milli: 1000, unit_price_minor: 850_000, discount_kind: 'percent', discount_value: 1000 }), // 8 500 − 850 = 7 650, tax 1 912.50
      line({ kind: 'rounding', unit_price_minor: -50 }),
    ]);
    expect(lines.map((l) => [l.gross_minor, l.discount_minor, l.net_minor, l.tax_minor, l.total_minor])).toEqual([
      [1_200_000, 0, 1_200_000, 300_000, 1_500_000],
      [180_000, 30_000, 150_000, 18_000, 168_000],
      [850_000, 85_000, 765_000, 191_250, 956_250],
      [-50, 0, -50, 0, -50],
    ]);
    expect(totals).toEqual({
      subtotal_minor: 2_230_000, discount_total_minor: 115_000, rounding_minor: -50, net_total_minor: 2_114_950, tax_total_minor: 509_250, total_minor: 2_624_200,
    });
    expect(totals.subtotal_minor - totals.discount_total_minor + totals.rounding_minor).toBe(totals.net_total_minor);
    expect(lines.reduce((a, l) => a + l.total_minor, 0)).toBe(totals.total_minor);
  });

  test('an empty quote is all zeros', () => {
    expect(priceQuote([]).totals).toEqual({ subtotal_minor: 0, discount_total_minor: 0, rounding_minor: 0, net_total_minor: 0, tax_total_minor: 0, total_minor: 0 });
  });

  test('many generated combinations: every total equals the sum of its line values', () => {
    let seed = 42;
    const rand = (n: number) => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return seed % n; };
    for (let round = 0; round < 300; round++) {
      const lines: LineInput[] = [];
      const count = 1 + rand(8);
      for (let i = 0; i < count; i++) {
        const kinds = [null, 'percent', 'amount'] as const;
        const kind = kinds[rand(3)];
        lines.push(line({
          kind: (['product', 'bundle', 'manual'] as const)[rand(3)], quantity_milli: 1 + rand(100_000), unit_price_minor: rand(1_000_000),
          discount_kind: kind, discount_value: kind === 'percent' ? rand(10_001) : kind === 'amount' ? rand(2_000_000) : 0, tax_rate_bp: [0, 600, 1200, 2500, 1250, 775][rand(6)],
        }));
      }
      if (rand(2)) lines.push(line({ kind: 'rounding', unit_price_minor: rand(199) - 99 }));
      const { lines: priced, totals } = priceQuote(lines);
      const sum = (k: 'gross_minor' | 'discount_minor' | 'net_minor' | 'tax_minor' | 'total_minor', rounding = true) =>
        priced.filter((l) => rounding || l.kind !== 'rounding').reduce((a, l) => a + l[k], 0);
      expect(totals.subtotal_minor).toBe(sum('gross_minor', false));
      expect(totals.discount_total_minor).toBe(sum('discount_minor', false));
      expect(totals.net_total_minor).toBe(sum('net_minor'));
      expect(totals.tax_total_minor).toBe(sum('tax_minor'));
      expect(totals.total_minor).toBe(sum('total_minor'));
      expect(totals.total_minor).toBe(totals.net_total_minor + totals.tax_total_minor);
      for (const l of priced) {
        expect(Number.isSafeInteger(l.total_minor)).toBe(true);
        if (l.kind === 'rounding') continue;
        expect(l.discount_minor).toBeGreaterThanOrEqual(0);
        expect(l.discount_minor).toBeLessThanOrEqual(l.gross_minor);
        expect(l.net_minor).toBe(l.gross_minor - l.discount_minor);
        expect(l.tax_minor).toBe(percentOf(l.net_minor, l.tax_rate_bp));
      }
    }
  });
});

describe('reading quantities and percentages', () => {
  test.each([
    ['1', 1000], ['1.5', 1500], ['1,25', 1250], ['0.001', 1], ['2.500', 2500], [' 10 ', 10_000], ['1 000', 1_000_000], ['1000000', 1_000_000_000],
  ])('quantity %j → %i', (raw, milli) => expect(parseQuantity(raw)).toEqual({ ok: true, value: milli }));

  test.each([
    ['-1', 'must be greater than 0'], ['0', 'must be greater than 0'], ['0.000', 'must be greater than 0'], ['1.0005', 'has at most 3 decimals'],
    ['abc', 'is not a number'], ['', 'is required'], ['1e3', 'is not a number'], ['1000001', 'is at most 1 000 000'],
  ])('quantity %j refused: %s', (raw, error) => expect(parseQuantity(raw)).toEqual({ ok: false, error }));

  test.each([['25', 2500], ['12.5', 1250], ['0', 0], ['100', 10_000], ['7,75', 775], ['10 %', 1000], ['99.99', 9999]])('percent %j → %i', (raw, value) =>
    expect(parsePercent(raw)).toEqual({ ok: true, value }));

  test.each([
    ['150', 'must be from 0 to 100 %'], ['100.01', 'must be from 0 to 100 %'], ['-1', 'must be from 0 to 100 %'], ['12.345', 'has at most 2 decimals'], ['ten', 'is not a percentage'],
  ])('percent %j refused: %s', (raw, error) => expect(parsePercent(raw)).toEqual({ ok: false, error }));

  test('written back the way people write them', () => {
    expect([1000, 1500, 1, 2500, 1_000_000].map(quantityText)).toEqual(['1', '1.5', '0.001', '2.5', '1000']);
    expect([2500, 1250, 0, 775, 10_000].map(percentText)).toEqual(['25', '12.5', '0', '7.75', '100']);
  });
});
