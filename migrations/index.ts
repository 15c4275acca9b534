import type { Knex } from 'knex';

/** A plugin migration; the list below is run in order and tracked in `knex_migrations_crm`. */
export interface CrmMigration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

import { foundation } from './20261123_001_foundation';
import { accounts } from './20261123_002_accounts';
import { taskPrimary } from './20261123_005_task_primary';
import { opportunities } from './20261123_007_opportunities';
import { priceBooks } from './20261123_011_price_books';
import { quotes } from './20261123_014_quotes';
import { contracts } from './20261123_017_contracts';
import { dashboards } from './20261123_020_dashboards';
import { benchIndexes } from './20261123_022_bench_indexes';
import { activityPeriodIndex } from './20261123_023_activity_period_index';
import { tableVersions } from './20261123_024_table_versions';
import { accountSearch } from './20261123_025_account_search';
import { accountListIndex } from './20261123_026_account_list_index';
import { accountFilterIndex } from './20261124_027_account_filter_index';
import { accountStreamIndexes } from './20261124_028_account_stream_indexes';
import { opportunityStatusOrderIndex } from './20261124_029_opportunity_status_order_index';
import { accountStreamCovering } from './20261124_030_account_stream_covering';
import { opportunityStatusScopeIndex } from './20261124_031_opportunity_status_scope_index';
import { quoteItemOrigin } from './20261124_032_quote_item_origin';
import { contractOpportunityRepair } from './20261124_033_contracts_follow_opportunity';
import { opportunityAuthorIndex } from './20261124_034_opportunity_author_index';
import { internalRelationKey } from './20261124_035_internal_relation_key';
import { moreTableVersions } from './20261124_036_more_table_versions';
import { activityFollowUpIndex } from './20261125_037_activity_follow_up_index';

export const crmMigrations: CrmMigration[] = [foundation, accounts, taskPrimary, opportunities, priceBooks, quotes, contracts, dashboards, benchIndexes, activityPeriodIndex, tableVersions, accountSearch, accountListIndex, accountFilterIndex, accountStreamIndexes, opportunityStatusOrderIndex, accountStreamCovering, opportunityStatusScopeIndex, quoteItemOrigin, contractOpportunityRepair, opportunityAuthorIndex, internalRelationKey, moreTableVersions, activityFollowUpIndex];
export const CRM_MIGRATIONS_TABLE = 'knex_migrations_crm';
