import { bundleSplit } from '../../plugin/services/bundles';

/** A small deterministic generator, so a failure names a case that can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('bundleSplit (Q3)', () => {
  test('the starter pack: 1000.00 over 50:30:20', () => {
    const parts = bundleSplit({ price_minor: 100000 }, [{ weight: 50 }, { weight: 30 }, { weight: 20 }]);
    expect(parts.map((p) => p.share_minor)).toEqual([50000, 30000, 20000]);
  });

  test('a price that does not divide evenly still adds up, leftovers to the largest remainders', () => {
    expect(bundleSplit({ price_minor: 100 }, [{ weight: 1 }, { weight: 1 }, { weight: 1 }]).map((p) => p.share_minor)).toEqual([34, 33, 33]);
    expect(bundleSplit({ price_minor: 1 }, [{ weight: 1 }, { weight: 1 }]).map((p) => p.share_minor)).toEqual([1, 0]);
    expect(bundleSplit({ price_minor: 0 }, [{ weight: 3 }, { weight: 7 }]).map((p) => p.share_minor)).toEqual([0, 0]);
  });

  test('keeps the items and adds their share', () => {
    const parts = bundleSplit({ price_minor: 999 }, [{ weight: 2, product_id: 7 }, { weight: 1, product_id: 8 }]);
    expect(parts).toEqual([{ weight: 2, product_id: 7, share_minor: 666 }, { weight: 1, product_id: 8, share_minor: 333 }]);
  });

  test('shares always sum to the bundle price and follow the weights within one minor unit, over many combinations', () => {
    const next = random(20261123);
    for (let round = 0; round < 3000; round++) {
      const count = 1 + Math.floor(next() * 12);
      const weights = Array.from({ length: count }, () => 1 + Math.floor(next() * (next() < 0.2 ? 10_000 : 100)));
      const price = Math.floor(next() * (next() < 0.1 ? 1e10 : 1e6));
      const parts = bundleSplit({ price_minor: price }, weights.map((weight) => ({ weight })));
      const sum = parts.reduce((a, p) => a + p.share_minor, 0);
      expect(sum).toBe(price);
      const totalWeight = weights.reduce((a, b) => a + b, 0);
      const off = parts.filter((p, i) => !Number.isInteger(p.share_minor) || p.share_minor < 0 || Math.abs(p.share_minor - (price * weights[i]) / totalWeight) >= 1.000001);
      expect(off).toEqual([]);
    }
  });

  test('equal weights give shares at most one minor unit apart', () => {
    for (let price = 0; price < 500; price++) {
      for (let n = 1; n <= 7; n++) {
        const shares = bundleSplit({ price_minor: price }, Array.from({ length: n }, () => ({ weight: 5 }))).map((p) => p.share_minor);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(price);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }
    }
  });
});
