import { demoCloseDays } from '../../plugin/demo/opportunities';
import { monthStart, quarterStart } from '../../plugin/services/dashboard-config';

const OPEN = ['Acme – ERP rollout', 'Acme – support renewal', 'Nordic Retail – POS upgrade', 'Eva Lind – consulting', 'Globex – data platform', 'Sakura Health – telemedicine'];

describe('the demo pipeline’s close days count from the day the demo is seeded', () => {
  // A quarter's and a year's first days, the days just after, the middle and the last day of a quarter, a leap day.
  test.each(['2027-01-01', '2027-01-02', '2027-04-03', '2026-11-24', '2026-12-31', '2028-02-29', '2027-07-20'])('seeded on %s', (today) => {
    const close = demoCloseDays(today);
    // Won deals closed on or before the day, never before this quarter's first day (targets vs actual shows them)…
    for (const name of ['Initech – licences', 'Webshop – integration']) {
      expect({ name, inQuarter: close[name] >= quarterStart(today) && close[name] <= today }).toEqual({ name, inQuarter: true });
    }
    // …the latest inside this month ("won this month" is not empty).
    expect(close['Webshop – integration'] >= monthStart(today)).toBe(true);
    expect(close['Initech – printers'] < today).toBe(true);
    for (const name of OPEN) expect({ name, ahead: close[name] > today }).toEqual({ name, ahead: true });
  });

  test('in the middle of a quarter the won deals closed weeks ago, not on the quarter’s first day', () => {
    const close = demoCloseDays('2026-11-24');
    expect(close['Initech – licences']).not.toBe('2026-10-01');
    expect(close['Initech – licences'] < close['Webshop – integration']).toBe(true);
    expect(close['Webshop – integration'] < '2026-11-24').toBe(true);
  });
});
