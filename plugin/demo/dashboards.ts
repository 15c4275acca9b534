import type { DemoDirectory, HostApi } from '../host';
import { ensurePages } from '../services/dashboards';
import { quarterStart } from '../services/dashboard-config';
import { todayUtc } from '../services/dates';

/**
 * Overview demo (D1, D5): the global overview's four pages and the CRM project's default page, user types
 * (the director is a sales director, the reps are sales reps) and targets for both reps this quarter and year.
 */
export async function seedDashboardsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const { director, rep1, rep2 } = demo.users;
  await ensurePages(knex, null, director?.id ?? null);
  if (demo.projects.crm) await ensurePages(knex, demo.projects.crm.id, director?.id ?? null);
  const types = [[director, 'sales_director'], [rep1, 'sales_rep'], [rep2, 'sales_rep']] as const;
  for (const [user, type] of types) if (user) await knex('crm_user_types').insert({ user_id: user.id, type }).onConflict('user_id').merge({ type });
  const today = todayUtc();
  const quarter = quarterStart(today);
  const year = `${today.slice(0, 4)}-01-01`;
  const at = new Date().toISOString();
  const rows = [];
  for (const [user, won, deals, calls] of [[rep1, 12_000_000, 3, 40], [rep2, 9_000_000, 2, 30]] as const) {
    if (!user) continue;
    rows.push(
      { user_id: user.id, period_kind: 'quarter', period_start: quarter, measure: 'won_amount', target_value: won, currency: 'EUR', lock_version: 0, created_at: at, updated_at: at },
      { user_id: user.id, period_kind: 'quarter', period_start: quarter, measure: 'won_count', target_value: deals, currency: null, lock_version: 0, created_at: at, updated_at: at },
      { user_id: user.id, period_kind: 'quarter', period_start: quarter, measure: 'activities', target_value: calls, currency: null, lock_version: 0, created_at: at, updated_at: at },
      { user_id: user.id, period_kind: 'year', period_start: year, measure: 'won_amount', target_value: won * 4, currency: 'EUR', lock_version: 0, created_at: at, updated_at: at },
    );
  }
  if (rows.length) await knex('crm_user_targets').insert(rows);
}
