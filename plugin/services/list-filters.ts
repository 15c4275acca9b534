import type { CrmContext } from '../http/guard';
import { findVisibleAccount } from './accounts';
import { findVisiblePartner } from './partners';

/**
 * A list filter (a link or a saved filter) on an account or partner this user may not see is left out, and the page
 * says so by kind, never by name: narrowing the user's own records to it would tell which of them are that record's.
 * For every list with such a filter (opportunities and pipeline, contracts, personal contacts, sales activities).
 * Only an id is looked up: a filter's words (the activity list's `none`, `hidden`) name no record.
 */
export async function withoutInvisibleTargets<F extends { account?: number | string | null; partner?: number | null }>(
  ctx: CrmContext, f: F,
): Promise<{ f: F; leftOut: string[] }> {
  const kept = { ...f };
  const leftOut: string[] = [];
  if (typeof f.account === 'number' && !(await findVisibleAccount(ctx, f.account))) {
    kept.account = null;
    leftOut.push('an account you cannot see');
  }
  if (f.partner !== undefined && f.partner !== null && !(await findVisiblePartner(ctx, f.partner))) {
    kept.partner = null;
    leftOut.push('a partner you cannot see');
  }
  return { f: kept, leftOut };
}

/** What a list's JSON says about the parts of its filter it left out (views/partials/filter-left-out.ejs in HTML). */
export function leftOutJson(leftOut: string[]): { left_out_of_filter?: string[] } {
  return leftOut.length ? { left_out_of_filter: leftOut } : {};
}
