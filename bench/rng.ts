/**
 * A small seeded random source (mulberry32): the same seed gives the same sequence on every machine and
 * Node version, which `Math.random` does not promise. Each generated table draws from its own stream
 * (seed + table name), so adding a column to one table does not shift the data of the others.
 */
export class Rng {
  private state: number;

  constructor(seed: number | string) {
    this.state = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Picks by weight: `weights[i]` is the relative chance of index i. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }
}

/** FNV-1a, for turning "seed:table" into a 32-bit stream seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export const FIRST_NAMES = ['Anna', 'Ben', 'Clara', 'David', 'Eva', 'Felix', 'Greta', 'Hugo', 'Ida', 'Jonas', 'Karin', 'Lukas', 'Maja', 'Nils',
  'Olga', 'Paul', 'Rosa', 'Sven', 'Tara', 'Ugo', 'Vera', 'Walter', 'Xenia', 'Yusuf', 'Zoe', 'Amir', 'Bianca', 'Chen', 'Dana', 'Emil'];
export const LAST_NAMES = ['Andersson', 'Berg', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'Garcia', 'Hansen', 'Ivanova', 'Jensen', 'Kowalski',
  'Lindqvist', 'Müller', 'Nowak', "O'Brien", 'Petrov', 'Quinn', 'Rossi', 'Schmidt', 'Tanaka', 'Usman', 'Virtanen', 'Weber', 'Xu', 'Young', 'Zimmer'];
export const COMPANY_WORDS = ['Acme', 'Nordic', 'Blue', 'Summit', 'Harbor', 'Vertex', 'Polar', 'Granite', 'Orbit', 'Cedar', 'Atlas', 'Beacon',
  'Crystal', 'Delta', 'Evergreen', 'Falcon', 'Globex', 'Helix', 'Iron', 'Juniper', 'Kestrel', 'Lumen', 'Meridian', 'Nimbus', 'Oak'];
export const COMPANY_SUFFIXES = ['Ltd', 'GmbH', 'AB', 'Oy', 'SA', 'Inc', 'BV', 'AS', 'Group', 'Systems', 'Logistics', 'Foods'];
export const CITIES: readonly [string, string][] = [['Tallinn', 'Estonia'], ['Riga', 'Latvia'], ['Helsinki', 'Finland'], ['Stockholm', 'Sweden'],
  ['Oslo', 'Norway'], ['Berlin', 'Germany'], ['Hamburg', 'Germany'], ['Paris', 'France'], ['Lyon', 'France'], ['Madrid', 'Spain'],
  ['Lisbon', 'Portugal'], ['Boston', 'USA'], ['Austin', 'USA'], ['Toronto', 'Canada'], ['São Paulo', 'Brazil'], ['Tokyo', 'Japan'],
  ['Singapore', 'Singapore'], ['Sydney', 'Australia'], ['Warsaw', 'Poland'], ['Vienna', 'Austria']];
export const JOB_TITLES = ['CEO', 'CFO', 'Head of IT', 'Purchasing manager', 'Project lead', 'Engineer', 'Office manager', 'Consultant', ''];
export const SUBJECTS = ['Intro call', 'Follow-up', 'Demo', 'Pricing discussion', 'Contract review', 'Site visit', 'Quarterly check-in',
  'Support question', 'Renewal talk', 'Workshop'];
export const PRODUCT_WORDS = ['Licence', 'Support', 'Training', 'Setup', 'Module', 'Sensor', 'Gateway', 'Analytics', 'Storage', 'Backup',
  'Consulting', 'Integration', 'Audit', 'Upgrade', 'Maintenance'];
