import { Session, expectLinkedPage, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const STATUSES = '/crm/settings/statuses';
const RULES = '/crm/settings/field-rules';
const statusRow = async (name: string) => knex()('crm_opportunity_statuses').where({ name }).first();
const statusId = async (name: string) => Number((await statusRow(name)).id);
const defaults = async () => (await knex()('crm_opportunity_statuses').orderBy('position')).filter((s) => Boolean(s.is_default)).map((s) => s.name);
const kanbanColumns = async (s: Session) => (await s.get('/crm/opportunities/kanban.json')).body.columns.map((c: { status: { name: string } }) => c.status.name);
const journalOf = async (id: number) => knex()('crm_journals').where({ journalized_type: 'settings_opportunity_statuses', journalized_id: id }).orderBy('id');
const validStatus = (extra: Record<string, string | string[]> = {}) => ({ name: 'Verbal agreement', color: '#12ab3C', probability: '90', kind: 'open', is_default: '0', ...extra });

describe('settings pages', () => {
  test('the sidebar links statuses, field rules and activity categories; each renders as a page, an htmx fragment and JSON', async () => {
    const director = await Session.signIn(host.app, 'director');
    const settings = await director.get('/crm/settings');
    for (const url of [STATUSES, RULES, '/crm/settings/lists/activity-categories']) {
      await expectLinkedPage(director, settings.text, url);
      expect((await director.get(`${url}.json`)).status).toBe(200);
    }
    const json = (await director.get(`${STATUSES}.json`)).body;
    expect(json.statuses.map((s: { name: string }) => s.name)).toEqual(['Qualification', 'Needs analysis', 'Proposal', 'Negotiation', 'Won', 'Lost']);
    expect(json.statuses[0]).toMatchObject({ color: '#7aa2d6', probability: 10, kind: 'open', active: true, is_default: true });
  });
});

describe('opportunity statuses (S4)', () => {
  test('bad input → 422 with the field named and the input kept; nothing saved', async () => {
    const director = await Session.signIn(host.app, 'director');
    const count = async () => Number((await knex()('crm_opportunity_statuses').count({ n: '*' }))[0].n);
    const n = await count();
    const cases: [Record<string, string>, string, string][] = [
      [{ color: 'red' }, 'color', 'Colour must be written #rrggbb'],
      [{ color: '#12ab3' }, 'color', 'Colour must be written #rrggbb'],
      [{ color: '#12ab3cc' }, 'color', 'Colour must be written #rrggbb'],
      [{ probability: '150' }, 'probability', 'Probability must be a whole percent from 0 to 100'],
      [{ probability: '-5' }, 'probability', 'Probability must be a whole percent from 0 to 100'],
      [{ probability: '12.5' }, 'probability', 'Probability must be a whole percent from 0 to 100'],
      [{ probability: '' }, 'probability', 'Probability must be a whole percent from 0 to 100'],
      [{ kind: 'maybe' }, 'kind', 'Kind must be one of: open, won, lost'],
      [{ name: '' }, 'name', 'Name must be 1–100 characters'],
      [{ name: 'x'.repeat(101) }, 'name', 'Name must be 1–100 characters'],
      [{ kind: 'won', is_default: '1' }, 'is_default', 'Only an open status can be the default'],
    ];
    for (const [override, field, message] of cases) {
      const res = await director.post(STATUSES, validStatus(override));
      expect([override, res.status]).toEqual([override, 422]);
      expect(res.text).toContain(`data-field="${field}"`);
      expect(visibleText(res.text)).toContain(message);
    }
    const kept = await director.post(STATUSES, validStatus({ probability: '150' }));
    expect(kept.text).toContain('value="Verbal agreement"');
    expect(kept.text).toContain('value="150"');

    const dup = await director.post(STATUSES, validStatus({ name: 'negotiation' }));
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('There is already a status named "negotiation": names must be unique.');
    const json = await director.agent.post(STATUSES).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf).send(validStatus({ color: 'red', probability: '150' }));
    expect(json.status).toBe(422);
    expect(Object.keys(json.body.fields).sort()).toEqual(['color', 'probability']);
    const renameDup = await director.post(`${STATUSES}/${await statusId('Proposal')}`, { name: 'WON', color: '#d69e2e', probability: '50', kind: 'open' });
    expect(renameDup.status).toBe(422);
    expect(visibleText(renameDup.text)).toContain('names must be unique');
    expect(await count()).toBe(n);
    expect((await statusRow('Proposal')).name).toBe('Proposal');
  });

  test('add (no-JS 303), edit through htmx (fragment + HX-Trigger): the kanban follows; journaled; names escaped', async () => {
    const director = await Session.signIn(host.app, 'director');
    const added = await director.post(STATUSES, validStatus());
    expect(added.status).toBe(303);
    expect(added.headers.location).toBe(STATUSES);
    const row = await statusRow('Verbal agreement');
    expect(row).toMatchObject({ color: '#12ab3c', probability: 90, kind: 'open', position: 7 });
    expect(Boolean(row.active)).toBe(true);
    expect(await kanbanColumns(director)).toContain('Verbal agreement');

    const edited = await director.htmxPost(`${STATUSES}/${row.id}`, { name: 'Verbal yes', color: '#654321', probability: '95', kind: 'open', is_default: '0' });
    expect(edited.status).toBe(200);
    expect(edited.headers['hx-trigger']).toBe('crm:opportunityStatusesChanged');
    expect(edited.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(visibleText(edited.text)).toContain('Saved the status “Verbal yes”.');
    expect(edited.text).toContain('value="Verbal yes"');
    expect(await statusRow('Verbal yes')).toMatchObject({ color: '#654321', probability: 95 });
    expect(await kanbanColumns(director)).toContain('Verbal yes');

    const entries = await journalOf(Number(row.id));
    expect(entries.map((j) => j.action)).toEqual(['create', 'update']);
    const details = await knex()('crm_journal_details').where({ journal_id: entries[1].id }).orderBy('id');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual([
      ['name', 'Verbal agreement', 'Verbal yes'], ['color', '#12ab3c', '#654321'], ['probability', '90', '95'],
    ]);
    const history = visibleText((await director.get(STATUSES)).text);
    expect(history).toContain('Name : Verbal agreement → Verbal yes');
    expect(history).toContain('Colour : #12ab3c → #654321');
    expect(history).toContain('Diane Director');

    expect((await director.post(STATUSES, validStatus({ name: '<script>alert(1)</script>', kind: 'lost', probability: '0' }))).status).toBe(303);
    const page = await director.get(STATUSES);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect((await director.post(`${STATUSES}/999999`, validStatus({ name: 'Ghost' }))).status).toBe(404);
  });

  test('exactly one default: setting one clears the others; the default cannot be unset, deactivated, closed or deleted', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect(await defaults()).toEqual(['Qualification']);
    const needs = await statusRow('Needs analysis');
    const made = await director.post(`${STATUSES}/${needs.id}`, { name: 'Needs analysis', color: needs.color, probability: '25', kind: 'open', is_default: ['0', '1'] });
    expect(made.status).toBe(303);
    expect(await defaults()).toEqual(['Needs analysis']);
    const qualification = await statusId('Qualification');
    const cleared = await journalOf(qualification);
    const last = await knex()('crm_journal_details').where({ journal_id: cleared[cleared.length - 1].id });
    expect(last.map((d) => [d.field, d.old_value, d.new_value])).toEqual([['is_default', 'true', 'false']]);
    // New opportunities start in the default status.
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Default status deal', currency: 'EUR' })).status).toBe(303);
    expect(Number((await knex()('crm_opportunities').where({ name: 'Default status deal' }).first()).status_id)).toBe(Number(needs.id));

    const unset = await director.post(`${STATUSES}/${needs.id}`, { name: 'Needs analysis', color: needs.color, probability: '25', kind: 'open', is_default: '0' });
    expect(unset.status).toBe(422);
    expect(visibleText(unset.text)).toContain('There must be one default status');
    const closed = await director.post(`${STATUSES}/${needs.id}`, { name: 'Needs analysis', color: needs.color, probability: '25', kind: 'won', is_default: '1' });
    expect(closed.status).toBe(422);
    const off = await director.post(`${STATUSES}/${needs.id}/active`, { active: '0' });
    expect(off.status).toBe(422);
    expect(visibleText(off.text)).toContain('“Needs analysis” is the default status for new opportunities and cannot be deactivated');
    expect(Boolean((await statusRow('Needs analysis')).active)).toBe(true);

    // An inactive status cannot become the default; back to Qualification through htmx.
    const fresh = await director.post(STATUSES, validStatus({ name: 'Parked', probability: '5' }));
    expect(fresh.status).toBe(303);
    const parked = await statusId('Parked');
    expect((await director.post(`${STATUSES}/${parked}/active`, { active: '0' })).status).toBe(303);
    expect((await director.post(`${STATUSES}/${parked}`, validStatus({ name: 'Parked', is_default: '1' }))).status).toBe(422);
    expect((await director.post(STATUSES, validStatus({ name: 'Fresh default', is_default: '1' }))).status).toBe(303);
    expect(await defaults()).toEqual(['Fresh default']);
    const fresh2 = await statusId('Fresh default');
    const delDefault = await director.post(`${STATUSES}/${fresh2}/delete`);
    expect(delDefault.status).toBe(422);
    expect(visibleText(delDefault.text)).toContain('“Fresh default” is the default status for new opportunities and cannot be deleted');
    const back = await director.htmxPost(`${STATUSES}/${qualification}`, { name: 'Qualification', color: '#7aa2d6', probability: '10', kind: 'open', is_default: ['0', '1'] });
    expect(back.status).toBe(200);
    expect(await defaults()).toEqual(['Qualification']);
    expect(visibleText(back.text)).toMatch(/Qualification[\s\S]*default/);
    expect((await director.post(`${STATUSES}/${fresh2}/delete`)).status).toBe(303);
  });

  test('the last active open status cannot be deactivated, closed or deleted', async () => {
    const director = await Session.signIn(host.app, 'director');
    const qualification = await statusId('Qualification');
    const others = await knex()('crm_opportunity_statuses').where({ kind: 'open', active: true }).pluck('id');
    // An unused open status is the only active one left (and not the default), to show the rule on its own.
    const [row] = await knex()('crm_opportunity_statuses').insert({ name: 'Lone', color: '#000000', position: 99, probability: 0, kind: 'open', active: true, is_default: false }).returning('id');
    const lone = Number(row.id ?? row);
    await knex()('crm_opportunity_statuses').whereIn('id', others).update({ active: false, is_default: false });
    try {
      const off = await director.post(`${STATUSES}/${lone}/active`, { active: '0' });
      expect(off.status).toBe(422);
      expect(visibleText(off.text)).toContain('“Lone” is the last active open status and cannot be deactivated: opportunities need an open status.');
      const won = await director.post(`${STATUSES}/${lone}`, { name: 'Lone', color: '#000000', probability: '50', kind: 'won' });
      expect(won.status).toBe(422);
      expect(visibleText(won.text)).toContain('“Lone” is the last active open status and cannot be made won');
      const del = await director.htmxPost(`${STATUSES}/${lone}/delete`);
      expect(del.status).toBe(422);
      expect(visibleText(del.text)).toContain('“Lone” is the last active open status and cannot be deleted');
      const stored = await knex()('crm_opportunity_statuses').where({ id: lone }).first();
      expect([Boolean(stored.active), stored.kind, Number(stored.probability)]).toEqual([true, 'open', 0]);
      // Once another open status is active again, it can go.
      expect((await director.post(`${STATUSES}/${qualification}/active`, { active: '1' })).status).toBe(303);
      expect((await director.post(`${STATUSES}/${lone}/delete`)).status).toBe(303);
    } finally {
      await knex()('crm_opportunity_statuses').whereIn('id', others).update({ active: true });
      await knex()('crm_opportunity_statuses').where({ id: qualification }).update({ is_default: true });
      await knex()('crm_opportunity_statuses').where({ id: lone }).delete();
    }
  });

  test('a status in use is never deleted (deactivate instead: the kanban drops it, its opportunities keep it); an unused one is', async () => {
    const director = await Session.signIn(host.app, 'director');
    const negotiation = await statusId('Negotiation');
    const inUse = Number((await knex()('crm_opportunities').where({ status_id: negotiation }).count({ n: '*' }))[0].n);
    expect(inUse).toBeGreaterThan(0);
    const refused = await director.post(`${STATUSES}/${negotiation}/delete`);
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain(`“Negotiation” is in use (${inUse} ${inUse === 1 ? 'opportunity' : 'opportunities'}) and cannot be deleted: deactivate it instead.`);
    expect(await statusRow('Negotiation')).toBeDefined();
    expect(visibleText((await director.get(STATUSES)).text)).toContain(`used ${inUse}×`);

    const off = await director.htmxPost(`${STATUSES}/${negotiation}/active`, { active: '0' });
    expect(off.status).toBe(200);
    expect(off.headers['hx-trigger']).toBe('crm:opportunityStatusesChanged');
    expect(await kanbanColumns(director)).not.toContain('Negotiation');
    expect(Number((await knex()('crm_opportunities').where({ status_id: negotiation }).count({ n: '*' }))[0].n)).toBe(inUse);
    expect((await director.post(`${STATUSES}/${negotiation}/active`, { active: '1' })).status).toBe(303);
    expect(await kanbanColumns(director)).toContain('Negotiation');

    expect((await director.post(STATUSES, validStatus({ name: 'Temporary' }))).status).toBe(303);
    const temp = await statusId('Temporary');
    const rep = (await director.get(`${RULES}.json`)).body.roles.find((r: { name: string }) => r.name === 'Sales rep').id;
    await knex()('crm_field_permissions').insert({ role_id: rep, status_id: temp, field: 'name', rule: 'read_only' });
    expect((await director.post(`${STATUSES}/${temp}/delete`)).status).toBe(303);
    expect(await statusRow('Temporary')).toBeUndefined();
    expect(await knex()('crm_field_permissions').where({ status_id: temp }).first()).toBeUndefined();
    expect((await journalOf(temp)).map((j) => j.action)).toEqual(['create', 'delete']);
    expect((await director.post(`${STATUSES}/999999/delete`)).status).toBe(404);
  });

  test('reorder with up and down: the kanban shows the new order; a bad direction is refused', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = await kanbanColumns(director);
    const proposal = await statusId('Proposal');
    expect((await director.post(`${STATUSES}/${proposal}/move`, { direction: 'up' })).status).toBe(303);
    const after = await kanbanColumns(director);
    const i = before.indexOf('Proposal');
    expect(after.indexOf('Proposal')).toBe(i - 1);
    expect(after[i]).toBe(before[i - 1]);
    const positions = (await knex()('crm_opportunity_statuses').orderBy('position')).map((s) => Number(s.position));
    expect(new Set(positions).size).toBe(positions.length);
    expect((await director.post(`${STATUSES}/${proposal}/move`, { direction: 'sideways' })).status).toBe(422);
    const moved = await director.htmxPost(`${STATUSES}/${proposal}/move`, { direction: 'down' });
    expect(moved.status).toBe(200);
    expect(moved.headers['hx-trigger']).toBe('crm:opportunityStatusesChanged');
    expect(await kanbanColumns(director)).toEqual(before);
  });
});

describe('sales activity categories (S4)', () => {
  test('a generic list: add, duplicate refused, in-use never deleted, unused deleted; journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const url = '/crm/settings/lists/activity-categories';
    const page = (await director.get(url)).text;
    for (const name of ['Call', 'Meeting', 'Email', 'Note']) expect(page).toContain(`name="name" value="${name}"`);
    expect((await director.post(url, { name: 'Site visit' })).status).toBe(303);
    const dup = await director.post(url, { name: 'call' });
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('There is already an activity category named "call": names must be unique.');

    const call = Number((await knex()('crm_activity_categories').where({ name: 'Call' }).first()).id);
    const account = await knex()('crm_accounts').first();
    await knex()('crm_sales_activities').insert({
      record_type: 'account', record_id: account.id, account_id: account.id, category_id: call, subject: 'Intro call', occurred_at: new Date().toISOString(),
    });
    const refused = await director.post(`${url}/${call}/delete`);
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('"Call" is in use (sales activities) and cannot be deleted: deactivate it instead.');
    expect((await director.post(`${url}/${call}/active`, { active: '0' })).status).toBe(303);
    expect(Boolean((await knex()('crm_activity_categories').where({ id: call }).first()).active)).toBe(false);

    const visit = Number((await knex()('crm_activity_categories').where({ name: 'Site visit' }).first()).id);
    const deleted = await director.htmxPost(`${url}/${visit}/delete`);
    expect(deleted.status).toBe(200);
    expect(deleted.headers['hx-trigger']).toBe('crm:settingsListChanged');
    expect(await knex()('crm_activity_categories').where({ id: visit }).first()).toBeUndefined();
    expect(await knex()('crm_journals').where({ journalized_type: 'settings_activity_categories', journalized_id: visit }).pluck('action')).toEqual(['create', 'delete']);
  });
});

describe('field rules per status (S5)', () => {
  const roleId = async (s: Session, name: string) => Number((await s.get(`${RULES}.json`)).body.roles.find((r: { name: string }) => r.name === name).id);

  test('set through the admin page, the rules work end to end: required blocks a rep’s kanban move, hidden drops the field', async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep = await roleId(director, 'Sales rep');
    const negotiation = await statusId('Negotiation');
    const qualification = await statusId('Qualification');

    // rep1 creates an opportunity without a close date (default status: Qualification).
    const created = await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Rules – undated deal', currency: 'EUR', description: 'Secret margin notes' });
    expect(created.status).toBe(303);
    const opp = await knex()('crm_opportunities').where({ name: 'Rules – undated deal' }).first();
    expect(Number(opp.status_id)).toBe(qualification);
    expect((await rep1.get(`/crm/opportunities/${opp.id}.json`)).body.opportunity.description).toBe('Secret margin notes');

    const page = await director.get(`${RULES}?role_id=${rep}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`name="rule_${negotiation}_expected_close_on"`);
    expect(visibleText(page.text)).toContain('Expected close date');
    expect(page.text).toMatch(new RegExp(`<option value="${rep}" selected>Sales rep</option>`));

    const saved = await director.post(RULES, {
      role_id: String(rep), [`rule_${negotiation}_expected_close_on`]: 'required', [`rule_${qualification}_description`]: 'hidden', [`rule_${qualification}_name`]: '',
    });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe(`${RULES}?role_id=${rep}`);
    const stored = await knex()('crm_field_permissions').where({ role_id: rep }).orderBy('field');
    expect(stored.map((r) => [Number(r.status_id), r.field, r.rule])).toEqual([[qualification, 'description', 'hidden'], [negotiation, 'expected_close_on', 'required']]);
    const shown = await director.get(`${RULES}?role_id=${rep}`);
    expect(shown.text).toMatch(new RegExp(`name="rule_${negotiation}_expected_close_on"[^>]*>\\s*<option value="">\\(none\\)</option>\\s*<option value="read_only" >read-only</option><option value="required" selected>`));

    // The rep's kanban move to Negotiation is refused, naming the field; nothing changes.
    const refused = await rep1.post(`/crm/opportunities/${opp.id}/status`, { status_id: String(negotiation), lock_version: String(opp.lock_version) });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('Cannot move to Negotiation: Expected close date is required there.');
    const refusedJson = await rep1.agent.post(`/crm/opportunities/${opp.id}/status`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ status_id: String(negotiation), lock_version: String(opp.lock_version) });
    expect(refusedJson.status).toBe(422);
    expect(refusedJson.body.error).toContain('Expected close date');
    expect(Number((await knex()('crm_opportunities').where({ id: opp.id }).first()).status_id)).toBe(qualification);

    // Hidden: the field is gone from the rep's JSON; the director (another role) and the admin still see it.
    const json = await rep1.get(`/crm/opportunities/${opp.id}.json`);
    expect(json.status).toBe(200);
    expect(json.body.opportunity).not.toHaveProperty('description');
    expect(json.body.opportunity.name).toBe('Rules – undated deal');
    const admin = await Session.signIn(host.app, 'admin');
    expect((await admin.get(`/crm/opportunities/${opp.id}.json`)).body.opportunity.description).toBe('Secret margin notes');

    // With a close date the move goes through.
    await knex()('crm_opportunities').where({ id: opp.id }).update({ expected_close_on: '2027-03-31' });
    expect((await rep1.post(`/crm/opportunities/${opp.id}/status`, { status_id: String(negotiation), lock_version: String(opp.lock_version) })).status).toBe(303);

    // Saving the whole matrix again replaces it: cells left at (none) lose their rule. Through htmx.
    const clearedMatrix = await director.htmxPost(RULES, { role_id: String(rep), [`rule_${negotiation}_expected_close_on`]: '' });
    expect(clearedMatrix.status).toBe(200);
    expect(clearedMatrix.headers['hx-trigger']).toBe('crm:fieldRulesSaved');
    expect(clearedMatrix.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(visibleText(clearedMatrix.text)).toContain('Field rules for Sales rep saved.');
    expect(await knex()('crm_field_permissions').where({ role_id: rep }).first()).toBeUndefined();
    await knex()('crm_opportunities').where({ id: opp.id }).update({ status_id: qualification });
    expect((await rep1.get(`/crm/opportunities/${opp.id}.json`)).body.opportunity.description).toBe('Secret margin notes');

    // Journaled, and shown in the page's history.
    const details = await knex()('crm_journal_details').join('crm_journals', 'crm_journals.id', 'crm_journal_details.journal_id')
      .where('crm_journals.journalized_type', 'settings_field_rules').select('field', 'old_value', 'new_value');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual(expect.arrayContaining([
      ['Sales rep · Negotiation: Expected close date', null, 'required'], ['Sales rep · Qualification: Description', null, 'hidden'],
      ['Sales rep · Negotiation: Expected close date', 'required', null],
    ]));
    expect(visibleText((await director.get(RULES)).text)).toContain('Sales rep · Negotiation: Expected close date : (empty) → required');
  });

  test('forged role, status, field or rule → 422 and nothing saved; an unknown role in the URL → 404', async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep = await roleId(director, 'Sales rep');
    const negotiation = await statusId('Negotiation');
    await knex()('crm_field_permissions').insert({ role_id: rep, status_id: negotiation, field: 'partner_id', rule: 'required' });
    const before = await knex()('crm_field_permissions').orderBy(['role_id', 'status_id', 'field']);
    try {
      const forms: Record<string, string>[] = [
        { role_id: '999999', [`rule_${negotiation}_name`]: 'required' },
        { role_id: 'x', [`rule_${negotiation}_name`]: 'required' },
        { [`rule_${negotiation}_name`]: 'required' },
        { role_id: String(rep), rule_999999_name: 'required' },
        { role_id: String(rep), [`rule_${negotiation}_amount_minor; drop`]: 'required' },
        { role_id: String(rep), [`rule_${negotiation}_status_id`]: 'required' },
        { role_id: String(rep), [`rule_${negotiation}_lock_version`]: 'hidden' },
        { role_id: String(rep), [`rule_${negotiation}_name`]: 'mandatory' },
        { role_id: String(rep), [`rule_${negotiation}_name`]: 'required', owner_id: '1' },
      ];
      for (const form of forms) {
        const res = await director.post(RULES, form);
        expect([form, res.status]).toEqual([form, 422]);
        expect(visibleText(res.text)).toContain('Field rules were not saved');
      }
      const forgedField = await director.post(RULES, { role_id: String(rep), [`rule_${negotiation}_amount_minor; drop`]: 'required' });
      expect(forgedField.text).toContain(`data-field="rule_${negotiation}_amount_minor; drop"`);
      const json = await director.agent.post(RULES).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf).send({ role_id: String(rep), [`rule_${negotiation}_name`]: 'mandatory' });
      expect(json.status).toBe(422);
      expect(json.body.fields[`rule_${negotiation}_name`]).toBe('must be one of: (none), read_only, required, hidden');
      expect(await knex()('crm_field_permissions').orderBy(['role_id', 'status_id', 'field'])).toEqual(before);
      expect((await director.get(`${RULES}?role_id=999999`)).status).toBe(404);
      expect((await director.get(`${RULES}?role_id=abc`)).status).toBe(404);
    } finally {
      await knex()('crm_field_permissions').delete();
    }
  });

  test('the role select switches the matrix; the JSON lists the rules of the chosen role', async () => {
    const director = await Session.signIn(host.app, 'director');
    const pmRole = await roleId(director, 'Project manager');
    const proposal = await statusId('Proposal');
    expect((await director.post(RULES, { role_id: String(pmRole), [`rule_${proposal}_amount_minor`]: 'read_only' })).status).toBe(303);
    try {
      const json = (await director.get(`${RULES}.json?role_id=${pmRole}`)).body;
      expect(json.role).toEqual({ id: pmRole, name: 'Project manager' });
      expect(json.rules).toEqual([{ status_id: proposal, field: 'amount_minor', rule: 'read_only' }]);
      expect(json.fields).not.toContain('status_id');
      const rep = await roleId(director, 'Sales rep');
      expect((await director.get(`${RULES}.json?role_id=${rep}`)).body.rules).toEqual([]);
      const fragment = await director.htmxGet(`${RULES}?role_id=${pmRole}`);
      expect(fragment.text).toMatch(new RegExp(`name="rule_${proposal}_amount_minor"[^>]*>[\\s\\S]*?<option value="read_only" selected>`));
    } finally {
      await knex()('crm_field_permissions').delete();
    }
  });
});

describe('permission: manage_crm_settings', () => {
  test('users without it get 404 on every URL, for reading and for changes; nothing changes', async () => {
    const negotiation = await statusId('Negotiation');
    const admin = await Session.signIn(host.app, 'admin');
    const rep = Number((await admin.get(`${RULES}.json`)).body.roles.find((r: { name: string }) => r.name === 'Sales rep').id);
    const gets = [STATUSES, `${STATUSES}.json`, RULES, `${RULES}.json`, `${RULES}?role_id=${rep}`, '/crm/settings/lists/activity-categories'];
    const posts: [string, Record<string, string>][] = [
      [STATUSES, validStatus({ name: 'Hacked' })], [`${STATUSES}/${negotiation}`, validStatus({ name: 'Hacked' })],
      [`${STATUSES}/${negotiation}/active`, { active: '0' }], [`${STATUSES}/${negotiation}/move`, { direction: 'up' }],
      [`${STATUSES}/${negotiation}/delete`, {}], [RULES, { role_id: String(rep), [`rule_${negotiation}_name`]: 'hidden' }],
      ['/crm/settings/lists/activity-categories', { name: 'Hacked' }],
    ];
    const before = await knex()('crm_opportunity_statuses').orderBy('id');
    for (const login of ['rep1', 'rep2', 'pm']) {
      const user = await Session.signIn(host.app, login);
      for (const url of gets) expect([url, (await user.get(url)).status]).toEqual([url, 404]);
      for (const url of gets) expect([url, (await user.htmxGet(url)).status]).toEqual([url, 404]);
      for (const [url, form] of posts) expect([url, (await user.post(url, form)).status]).toEqual([url, 404]);
      for (const [url, form] of posts) expect([url, (await user.htmxPost(url, form)).status]).toEqual([url, 404]);
    }
    expect(await knex()('crm_opportunity_statuses').orderBy('id')).toEqual(before);
    expect(await knex()('crm_field_permissions').first()).toBeUndefined();
    expect(await knex()('crm_activity_categories').where({ name: 'Hacked' }).first()).toBeUndefined();
    expect((await admin.get(STATUSES)).status).toBe(200);
    expect((await admin.get(RULES)).status).toBe(200);
  });
});
