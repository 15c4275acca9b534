import Ajv from 'ajv';
import manifestJson from '../../plugin.json';
import schema from '../../plugin.schema.json';
import { crmRoutes } from '../../plugin/index';
import { buildRouter } from '../../plugin/http/guard';
import type { HostApi } from '../../plugin/host';

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

describe('plugin.json (P1)', () => {
  test('validates against its JSON Schema', () => {
    const ok = validate(manifestJson);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  test('the schema rejects unknown keys, bad scopes and menus without a permission', () => {
    expect(validate({ ...manifestJson, surprise: true })).toBe(false);
    expect(validate({ ...manifestJson, permissions: [{ name: 'view_x', scope: 'everywhere', group: 'X', label: 'X' }] })).toBe(false);
    const menus = manifestJson.menus.map(({ permission: _p, ...rest }) => rest);
    expect(validate({ ...manifestJson, menus })).toBe(false);
  });

  test('declares the crm module, every permission the platform needs and the three menus', () => {
    expect(manifestJson.id).toBe('crm');
    expect(manifestJson.module.id).toBe('crm');
    const byName = new Map(manifestJson.permissions.map((p) => [p.name, p.scope]));
    for (const entity of ['accounts', 'personal_contacts', 'partners', 'leads', 'opportunities', 'campaigns', 'contracts', 'price_books']) {
      for (const action of ['view', 'add', 'edit', 'delete']) expect(byName.get(`${action}_${entity}`)).toBe('project');
    }
    expect(byName.get('manage_crm_page')).toBe('project');
    for (const p of ['manage_crm_settings', 'manage_user_targets', 'manage_price_books']) expect(byName.get(p)).toBe('global');
    expect(manifestJson.menus.map((m) => m.menu).sort()).toEqual(['admin', 'global', 'project']);
    for (const menu of manifestJson.menus) for (const p of menu.permission) expect(byName.has(p)).toBe(true);
  });
});

describe('route guard', () => {
  test('every plugin route names permissions declared in plugin.json', () => {
    const declared = new Set(manifestJson.permissions.map((p) => p.name));
    for (const route of crmRoutes()) {
      const perms = Array.isArray(route.permission) ? route.permission : [route.permission];
      expect(perms.length).toBeGreaterThan(0);
      for (const p of perms) expect(declared.has(p)).toBe(true);
    }
  });

  test('a route naming an undeclared permission cannot even be mounted', () => {
    const host = {} as HostApi;
    expect(() => buildRouter(host, [{ method: 'get', path: '/crm/x', permission: 'view_everything', handler: async () => undefined }]))
      .toThrow('"view_everything" is not a permission declared in plugin.json');
  });
});
