import type { CrmContext } from '../http/guard';
import { BUNDLES_PANEL } from './bundles';
import { PRICE_IMPORT_PANEL } from './price-import';

/**
 * Parts other features add to the price book page (bundles, import, attachments …): each a view under views/
 * rendered with the locals `load` returns plus priceBook, canManage and csrfToken.
 */
export interface PriceBookPart<P = { id: number }> {
  id: string;
  view: string;
  load(ctx: CrmContext, priceBook: P, canManage: boolean): Promise<Record<string, unknown>>;
}

export const PRICE_BOOK_PANELS: PriceBookPart[] = [BUNDLES_PANEL, PRICE_IMPORT_PANEL];
