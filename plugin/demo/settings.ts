import type { DemoDirectory, HostApi } from '../host';

/**
 * S3 in the demo: sales reps see only the accounts they manage or created, and the director supervises both
 * reps (the director's own role keeps "all", so the supervision shows once a role uses "own + subordinates").
 */
export async function seedSettingsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const rep = (await host.roles()).find((r) => r.name === 'Sales rep');
  if (rep) {
    await knex('crm_role_visibility').insert({ role_id: rep.id, entity: 'accounts', level: 'own' })
      .onConflict(['role_id', 'entity']).merge({ level: 'own' });
  }
  const users = await host.users();
  const byLogin = (login: string) => users.find((u) => u.login === login) ?? demo.users[login];
  const director = byLogin('director');
  if (!director) return;
  for (const login of ['rep1', 'rep2']) {
    const user = byLogin(login);
    if (user) await knex('crm_user_supervisors').insert({ user_id: user.id, supervisor_id: director.id }).onConflict('user_id').merge({ supervisor_id: director.id });
  }
}
