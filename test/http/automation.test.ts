import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

/** Issue #6, C4 settings through HTTP: automation rules per product category (manage_crm_settings). */
let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const idOf = async (table: string, where: Record<string, unknown>) => Number((await knex()(table).where(where).first('id')).id);
const URL = '/crm/settings/automation';

describe('automation rules in the CRM settings (C4)', () => {
  test('only those who manage CRM settings reach the page; the demo rules are listed with tokens', async () => {
    for (const login of ['rep1', 'pm']) {
      const s = await Session.signIn(host.app, login);
      expect((await s.get(URL)).status).toBe(404);
      expect((await s.post(URL, { action: 'project' })).status).toBe(404);
    }
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get(URL);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('Implementation services · project “{account.name} – {contract.product}”');
    expect(text).toContain('Implementation services · task “Plan the kick-off with {account.name}”');
    expect(text).toContain('{contract.product}');
    expect((await director.get('/crm/settings')).text).toContain('href="/crm/settings/automation"');
    const json = (await director.get(`${URL}.json`)).body;
    expect(json.rules.length).toBeGreaterThanOrEqual(2);
  });

  test('adding: every problem named at once (template, unknown tokens, project for the task); a valid rule is saved and journaled', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const hardware = await idOf('crm_product_categories', { name: 'Hardware' });
    const bad = await admin.post(URL, { category_id: String(hardware), action: 'project', template_project_id: '', name_pattern: '{account.nmae} {contract.product}' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="template_project_id"');
    expect(visibleText(bad.text)).toContain('Unknown token: {account.nmae}');
    // Tokens are spelled in lower case: another spelling is named, not left in the project's name.
    const upper = await admin.post(URL, { category_id: String(hardware), action: 'project', template_project_id: '', name_pattern: '{account.NAME} – {Contract.Product}' });
    expect(visibleText(upper.text)).toContain('Unknown tokens: {account.NAME}, {Contract.Product}');
    const notTemplate = await admin.post(URL, { category_id: String(hardware), action: 'project', template_project_id: String(host.demo.projects.internal.id), name_pattern: 'x' });
    expect(notTemplate.status).toBe(422);
    expect(visibleText(notTemplate.text)).toContain('Choose a project template from the list');
    // A task "in the new project" needs a project rule in the category.
    const task = await admin.post(URL, { category_id: String(hardware), action: 'task', task_subject: 'Ship {contract.product}', task_project_id: '', due_in_days: '9999' });
    expect(task.status).toBe(422);
    expect(task.text).toContain('data-field="task_project_id"');
    expect(task.text).toContain('data-field="due_in_days"');
    const ok = await admin.post(URL, {
      category_id: String(hardware), action: 'task', task_subject: 'Ship <b>{contract.product}</b> to {account.name}', task_project_id: String(host.demo.projects.internal.id),
      assignee_id: String(host.demo.users.pm.id), due_in_days: '3',
    });
    expect(ok.status).toBe(303);
    const rule = await knex()('crm_automation_rules').where({ category_id: hardware, action: 'task' }).first();
    expect(rule).toMatchObject({ task_project_id: host.demo.projects.internal.id, assignee_id: host.demo.users.pm.id, due_in_days: 3 });
    const page = await admin.get(URL);
    expect(page.text).toContain('Ship &lt;b&gt;{contract.product}&lt;/b&gt; to {account.name}');
    expect(page.text).not.toContain('<b>{contract.product}</b>');
    expect(await knex()('crm_journals').where({ journalized_type: 'settings_automation_rules', journalized_id: rule.id, action: 'create' }).first()).toBeTruthy();

    // Edit: stale lock version is a 409; saving clears a flagged problem; deactivate; delete (no runs yet).
    await knex()('crm_automation_rules').where({ id: rule.id }).update({ problem: 'Rule: its project is gone.' });
    const form = { category_id: String(hardware), action: 'task', task_subject: 'Ship {contract.product}', task_project_id: String(host.demo.projects.internal.id), due_in_days: '5' };
    expect((await admin.post(`${URL}/${rule.id}`, { ...form, lock_version: String(rule.lock_version + 7) })).status).toBe(409);
    expect((await admin.htmxPost(`${URL}/${rule.id}`, { ...form, lock_version: String(rule.lock_version) })).status).toBe(200);
    const saved = await knex()('crm_automation_rules').where({ id: rule.id }).first();
    expect(saved).toMatchObject({ task_subject: 'Ship {contract.product}', due_in_days: 5, problem: null });
    expect((await admin.post(`${URL}/${rule.id}/active`, { active: '0' })).status).toBe(303);
    expect(Boolean((await knex()('crm_automation_rules').where({ id: rule.id }).first()).active)).toBe(false);
    expect((await admin.post(`${URL}/${rule.id}/delete`)).status).toBe(303);
    expect(await knex()('crm_automation_rules').where({ id: rule.id }).first()).toBeUndefined();
    expect((await admin.post(`${URL}/${rule.id}/delete`)).status).toBe(404);
  });

  test('a project rule whose new project an active task rule needs cannot be switched off while that rule is on', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const taskRule = await knex()('crm_automation_rules').where({ action: 'task', active: true }).whereNull('task_project_id').first();
    const projectRule = await knex()('crm_automation_rules').where({ action: 'project', active: true, category_id: taskRule.category_id }).first();
    expect(await knex()('crm_automation_rules').where({ action: 'project', active: true, category_id: taskRule.category_id })).toHaveLength(1);
    const refused = await admin.post(`${URL}/${projectRule.id}/active`, { active: '0' });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain(`Rule #${taskRule.id} puts its task into the project this rule makes`);
    expect(await knex()('crm_automation_rules').where({ id: projectRule.id }).first()).toMatchObject({ lock_version: projectRule.lock_version });
    expect(Boolean((await knex()('crm_automation_rules').where({ id: projectRule.id }).first()).active)).toBe(true);
    // With the task rule off first, the project rule may follow; switched on again in the other order.
    expect((await admin.post(`${URL}/${taskRule.id}/active`, { active: '0' })).status).toBe(303);
    expect((await admin.post(`${URL}/${projectRule.id}/active`, { active: '0' })).status).toBe(303);
    expect((await admin.post(`${URL}/${projectRule.id}/active`, { active: '1' })).status).toBe(303);
    expect((await admin.post(`${URL}/${taskRule.id}/active`, { active: '1' })).status).toBe(303);
  });

  test('a rule that has run cannot be deleted (its runs keep the links): deactivate it instead', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const ran = await knex()('crm_automation_runs').first('rule_id');
    const res = await admin.post(`${URL}/${ran.rule_id}/delete`);
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('deactivate it instead');
  });

  test('a new rule shows in the confirmation page’s preview; an inactive one does not', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const hardware = await idOf('crm_product_categories', { name: 'Hardware' });
    expect((await admin.post(URL, { category_id: String(hardware), action: 'task', task_subject: 'Deliver {contract.product}', task_project_id: String(host.demo.projects.crm.id), due_in_days: '2' })).status).toBe(303);
    const rule = await knex()('crm_automation_rules').where({ category_id: hardware, task_subject: 'Deliver {contract.product}' }).first();
    const [o] = await knex()('crm_opportunities').insert({
      project_id: host.demo.projects.crm.id, name: 'Preview deal', account_id: await idOf('crm_accounts', { name: 'Parts & Bolts Supply' }), owner_id: host.demo.users.director.id,
      author_id: host.demo.users.director.id, status_id: await idOf('crm_opportunity_statuses', { name: 'Proposal' }), currency: 'EUR',
    }).returning('id');
    const opp = Number(o.id ?? o);
    const [q] = await knex()('crm_quotes').insert({ opportunity_id: opp, number: 'PREVIEW-1', name: 'Preview', currency: 'EUR', is_active: true }).returning('id');
    const product = await knex()('crm_products').where({ code: 'HW-SCAN' }).first();
    await knex()('crm_quote_items').insert({ quote_id: Number(q.id ?? q), position: 1, kind: 'product', product_id: product.id, bundle_id: null, price_book_id: null, code: 'HW-SCAN', name: product.name, description: '', unit: 'piece', quantity_milli: 2000, unit_price_minor: 18_900, discount_kind: null, discount_value: 0, tax_rate_bp: 2500 });
    const director = await Session.signIn(host.app, 'director');
    expect(visibleText((await director.get(`/crm/opportunities/${opp}/sell`)).text)).toContain('Task “Deliver Barcode scanner” in CRM');
    await admin.post(`${URL}/${rule.id}/active`, { active: '0' });
    expect(visibleText((await director.get(`/crm/opportunities/${opp}/sell`)).text)).not.toContain('Deliver Barcode scanner');
  });
});
