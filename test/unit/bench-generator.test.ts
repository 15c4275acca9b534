import type { Knex } from 'knex';
import { migrateAll } from '../../host/app';
import { crmPlugin } from '../../plugin/index';
import { BENCH_LOGINS, ITEMS_PER_QUOTE, PRICE_BOOKS, countsFor, generateDataset } from '../../bench/generate';
import { createTestDatabase } from '../helpers/db';

/** The bench's data generator at 1/10000 of the full size, on a fresh database (SQLite, or PostgreSQL with DATABASE_URL). */
const SCALE = 0.0001;
const TABLES = ['crm_partners', 'crm_accounts', 'crm_account_projects', 'crm_personal_contacts', 'crm_account_contacts', 'crm_opportunities',
  'crm_sales_activities', 'crm_products', 'crm_product_prices', 'crm_quotes', 'crm_quote_items', 'crm_contracts'];

async function countOf(knex: Knex, table: string): Promise<number> {
  const [{ n }] = await knex(table).count({ n: '*' });
  return Number(n);
}

/** Every generated row, in a stable order, as plain JSON (dates as ISO strings). */
async function dump(knex: Knex): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of TABLES) {
    const rows = await knex(table).select('*');
    out[table] = rows.map((r) => JSON.stringify(r)).sort();
  }
  out.users = (await knex('users').orderBy('login').select('login', 'name', 'admin')).map((r) => JSON.stringify({ ...r, admin: Boolean(r.admin) }));
  out.projects = (await knex('projects').orderBy('identifier').select('identifier', 'name')).map((r) => JSON.stringify(r));
  return out;
}

async function generate(seed: number) {
  const db = await createTestDatabase();
  try {
    await migrateAll(db.knex, [crmPlugin]);
    const result = await generateDataset(db.knex, [crmPlugin], { scale: SCALE, seed });
    const counts: Record<string, number> = {};
    for (const table of [...TABLES, 'users', 'projects', 'crm_price_books', 'members', 'crm_role_visibility']) counts[table] = await countOf(db.knex, table);
    const rep = await db.knex('users').where({ login: BENCH_LOGINS.rep }).first('id');
    const quotesPerOpportunity = await db.knex('crm_quotes').groupBy('opportunity_id').select('opportunity_id').count({ n: '*' });
    const soldWithoutContract = await db.knex('crm_opportunities as o').whereNotNull('o.sold_at')
      .whereNotExists((s) => s.select(1).from('crm_contracts as c').whereRaw('c.opportunity_id = o.id')).count({ n: '*' });
    return { result, counts, rep: Number(rep.id), quotesPerOpportunity, soldWithoutContract: Number(soldWithoutContract[0].n), rows: await dump(db.knex) };
  } finally {
    await db.destroy();
  }
}

describe('bench data generator', () => {
  let first: Awaited<ReturnType<typeof generate>>;
  let second: Awaited<ReturnType<typeof generate>>;

  beforeAll(async () => {
    first = await generate(7);
    second = await generate(7);
  }, 120_000);

  it('writes the row counts of the scale, and reports them per table', () => {
    const expected = countsFor(SCALE);
    expect(first.counts.crm_accounts).toBe(expected.accounts);
    expect(first.counts.crm_personal_contacts).toBe(expected.personalContacts);
    expect(first.counts.crm_partners).toBe(expected.partners);
    expect(first.counts.crm_opportunities).toBe(expected.opportunities);
    expect(first.counts.crm_sales_activities).toBe(expected.activities);
    expect(first.counts.crm_quotes).toBe(expected.quotes);
    expect(first.counts.crm_quote_items).toBe(expected.quotes * ITEMS_PER_QUOTE);
    expect(first.counts.crm_contracts).toBe(expected.contracts);
    expect(first.counts.crm_products).toBe(expected.products);
    expect(first.counts.crm_price_books).toBe(PRICE_BOOKS);
    expect(first.counts.crm_product_prices).toBe(expected.products * PRICE_BOOKS);
    expect(first.counts.crm_account_projects).toBeGreaterThanOrEqual(expected.accounts);
    // The host part does not scale: 10 projects with 2 subprojects each, 50 users, sales reps with "own" visibility.
    expect(first.counts.projects).toBe(30);
    expect(first.counts.users).toBe(50);
    expect(first.counts.crm_role_visibility).toBe(2);
    const reported = new Map(first.result.stats.map((s) => [s.table, s.rows]));
    expect(reported.get('crm_accounts')).toBe(expected.accounts);
    expect(reported.get('crm_sales_activities')).toBe(expected.activities);
    expect(first.result.totalRows).toBeGreaterThan(0);
  });

  it('keeps the data consistent: one quote per opportunity, every sold opportunity has its contracts', () => {
    expect(first.quotesPerOpportunity.every((r) => Number(r.n) === 1)).toBe(true);
    expect(first.soldWithoutContract).toBe(0);
  });

  it('gives the same data for the same seed', () => {
    expect(second.rows).toEqual(first.rows);
  });

  it('gives other data for another seed', async () => {
    const other = await generate(8);
    expect(other.counts.crm_accounts).toBe(first.counts.crm_accounts);
    expect(other.rows.crm_accounts).not.toEqual(first.rows.crm_accounts);
  }, 60_000);
});
