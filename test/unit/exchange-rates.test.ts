import { convertMinor, invertRate, parseRate, rateText } from '../../plugin/services/exchange-rates';

describe('exchange rates (Q7): exact conversion', () => {
  test('two-decimal currencies: amount × rate, rounded once half away from zero', () => {
    expect(convertMinor(10000, 'EUR', 'SEK', 11_450_000)).toBe(114500); // 100.00 EUR → 1145.00 SEK
    expect(convertMinor(1, 'EUR', 'USD', 1_500_000)).toBe(2); // 0.015 → 0.02 (half up)
    expect(convertMinor(-1, 'EUR', 'USD', 1_500_000)).toBe(-2); // half away from zero
    expect(convertMinor(1, 'EUR', 'USD', 1_499_999)).toBe(1);
    expect(convertMinor(0, 'EUR', 'USD', 1_234_567)).toBe(0);
  });

  test('JPY has no decimals, KWD three', () => {
    expect(convertMinor(1000, 'JPY', 'EUR', 6_300)).toBe(630); // 1000 JPY at 0.0063 → 6.30 EUR
    expect(convertMinor(100, 'EUR', 'JPY', 158_500_000)).toBe(159); // 1.00 EUR → 158.5 → 159 JPY
    expect(convertMinor(10_000, 'KWD', 'EUR', 3_010_000)).toBe(3010); // 10.000 KWD → 30.10 EUR
    expect(convertMinor(1234, 'EUR', 'KWD', 332_000)).toBe(4097); // 12.34 EUR × 0.332 = 4.09688 → 4.097 KWD
    expect(convertMinor(5, 'KWD', 'JPY', 500_000_000)).toBe(3); // 0.005 KWD × 500 = 2.5 → 3 JPY
  });

  test('large amounts stay exact (no float error)', () => {
    expect(convertMinor(99_999_999_999, 'EUR', 'SEK', 11_234_567)).toBe(1_123_456_699_989); // 1 123 456 700 000 − 11.234567 = 1 123 456 699 988.77 → …989
  });

  test('the inverse pair: 10^12 / rate, rounded half away from zero', () => {
    expect(invertRate(2_000_000)).toBe(500_000);
    expect(invertRate(3_000_000)).toBe(333_333);
    expect(invertRate(1_500_000)).toBe(666_667);
    expect(invertRate(11_450_000)).toBe(87_336); // 0.0873362… → 0.087336
  });

  test('parsing rates: > 0, at most 6 decimals', () => {
    expect(parseRate('11.234567')).toEqual({ ok: true, micro: 11_234_567 });
    expect(parseRate('0,5')).toEqual({ ok: true, micro: 500_000 });
    expect(parseRate('1.2345678')).toEqual({ ok: false, error: 'has at most 6 decimals' });
    expect(parseRate('0')).toEqual({ ok: false, error: 'must be more than 0' });
    expect(parseRate('-1').ok).toBe(false);
    expect(parseRate('abc').ok).toBe(false);
    expect(rateText(11_234_500)).toBe('11.2345');
    expect(rateText(2_000_000)).toBe('2');
  });
});
