import { amountInput, formatMoney, parseAmount, percentOf, splitByWeights } from '../../plugin/services/money';

describe('parseAmount', () => {
  test.each([
    ['1234.5', 'EUR', 123450], ['1 234,50', 'EUR', 123450], ['0', 'EUR', 0], ['-3', 'SEK', -300], ['1500', 'JPY', 1500],
    ['1.005', 'KWD', 1005], ['  42.10 ', 'USD', 4210], ['9999999999999', 'EUR', 999999999999900],
  ])('%s %s → %d minor units', (raw, currency, minor) => {
    expect(parseAmount(raw, currency)).toEqual({ ok: true, minor });
  });

  test.each([
    ['12.345', 'EUR', 'has at most 2 decimals in EUR'], ['12.5', 'JPY', 'has no decimals in JPY'], ['1.0001', 'KWD', 'has at most 3 decimals in KWD'],
    ['abc', 'EUR', 'is not an amount'], ['', 'EUR', 'is not an amount'], ['1e5', 'EUR', 'is not an amount'], ['1.2.3', 'EUR', 'is not an amount'],
    ['--1', 'EUR', 'is not an amount'], ["1; DROP TABLE x", 'EUR', 'is not an amount'],
    ['99999999999999', 'EUR', 'is too large (at most 13 digits before the decimals)'], ['-12345678901234567890.5', 'EUR', 'is too large (at most 13 digits before the decimals)'],
  ])('%s %s is refused: %s', (raw, currency, error) => {
    expect(parseAmount(raw, currency)).toEqual({ ok: false, error });
  });
});

describe('formatting', () => {
  test('amountInput gives back what parseAmount reads', () => {
    for (const [minor, currency] of [[123450, 'EUR'], [-5, 'EUR'], [1500, 'JPY'], [1005, 'KWD'], [0, 'USD']] as const) {
      const text = amountInput(minor, currency);
      expect(parseAmount(text, currency)).toEqual({ ok: true, minor });
    }
    expect(amountInput(-5, 'EUR')).toBe('-0.05');
  });

  test('formatMoney groups thousands and keeps the currency’s decimals', () => {
    expect(formatMoney(123456789, 'EUR')).toBe('1\u202f234\u202f567.89 EUR');
    expect(formatMoney(1500, 'JPY')).toBe('1\u202f500 JPY');
    expect(formatMoney(-100050, 'SEK')).toBe('-1\u202f000.50 SEK');
    expect(formatMoney(null, 'EUR')).toBe('');
  });
});

describe('percentOf: one rounding rule, half away from zero', () => {
  test.each([
    [10000, 2500, 2500], [333, 5000, 167], [-333, 5000, -167], [1, 5000, 1], [1, 4999, 0], [99999, 1250, 12500], [0, 7500, 0],
  ])('%d × %d/10000 → %d', (minor, pct, expected) => {
    expect(percentOf(minor, pct)).toBe(expected);
  });
});

describe('splitByWeights', () => {
  test('parts always add up to the total', () => {
    for (const [total, weights] of [[10000, [1, 1, 1]], [1, [1, 1]], [99999, [50, 30, 20]], [-1001, [1, 2]], [7, [3, 0, 4]], [0, [1, 5]]] as [number, number[]][]) {
      const parts = splitByWeights(total, weights);
      expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
      expect(parts).toHaveLength(weights.length);
    }
  });

  test('shares follow the weights; leftovers go to the largest remainders, then the earlier item', () => {
    expect(splitByWeights(10000, [1, 1, 1])).toEqual([3334, 3333, 3333]);
    expect(splitByWeights(10000, [50, 50])).toEqual([5000, 5000]);
    expect(splitByWeights(100, [1, 2])).toEqual([33, 67]);
    expect(splitByWeights(7, [3, 0, 4])).toEqual([3, 0, 4]);
  });

  test('bad weights are refused', () => {
    expect(() => splitByWeights(100, [0, 0])).toThrow();
    expect(() => splitByWeights(100, [1.5, 1])).toThrow();
    expect(() => splitByWeights(100, [-1, 2])).toThrow();
  });
});
