import { Session, startTestHost, type TestHost } from '../helpers/app';

/**
 * A URL may carry any id of up to ten digits. Ids beyond a PostgreSQL `integer` make it refuse the query with an
 * error, so every record route must answer such an id as it answers a missing record: 404, not 500.
 */
let host: TestHost;
let admin: Session;
beforeAll(async () => {
  host = await startTestHost();
  admin = await Session.signIn(host.app, 'admin');
});
afterAll(async () => { await host.close(); });

const BEYOND_INTEGER = '4294967296';
const firstId = async (table: string) => Number((await host.db.knex(table).orderBy('id').first('id')).id);

test('record pages answer 404 for an id beyond the integer range, on both databases', async () => {
  const account = await firstId('crm_accounts');
  const quote = await firstId('crm_quotes');
  const urls = [
    `/crm/accounts/${BEYOND_INTEGER}`, `/crm/personal-contacts/${BEYOND_INTEGER}`, `/crm/partners/${BEYOND_INTEGER}`,
    `/crm/opportunities/${BEYOND_INTEGER}`, `/crm/quotes/${BEYOND_INTEGER}`, `/crm/quotes/${quote}/items/${BEYOND_INTEGER}/edit`,
    `/crm/contracts/${BEYOND_INTEGER}`, `/crm/products/${BEYOND_INTEGER}`, `/crm/price-books/${BEYOND_INTEGER}`,
    `/crm/bundles/${BEYOND_INTEGER}`, `/crm/activities/${BEYOND_INTEGER}/calendar.ics`, `/crm/tasks/${BEYOND_INTEGER}/accounts`,
    `/crm/accounts/${account}/attachments/${BEYOND_INTEGER}/download`, `/crm/settings/custom-fields/${BEYOND_INTEGER}/edit`,
  ];
  const answers = await Promise.all(urls.map(async (url) => `${url} ${(await admin.get(url)).status}`));
  expect(answers).toEqual(urls.map((url) => `${url} 404`));
});

test('settings forms answer 404 for an id beyond the integer range and change nothing', async () => {
  const before = await host.db.knex('crm_industries').count({ n: '*' }).first();
  const posts = [
    `/crm/settings/statuses/${BEYOND_INTEGER}`, `/crm/settings/lists/industries/${BEYOND_INTEGER}`,
    `/crm/settings/automation/${BEYOND_INTEGER}`,
  ];
  const answers: string[] = [];
  for (const url of posts) answers.push(`${url} ${(await admin.post(url, { name: 'Renamed' })).status}`);
  expect(answers).toEqual(posts.map((url) => `${url} 404`));
  expect(await host.db.knex('crm_industries').count({ n: '*' }).first()).toEqual(before);
});
