import { calendarEntry, escapeIcsText, foldLine, icsDateTime, roundUpToFiveMinutes } from '../../plugin/services/ics';

describe('roundUpToFiveMinutes', () => {
  test.each([
    ['2026-11-23T10:02:00.000Z', '2026-11-23T10:05:00.000Z'],
    ['2026-11-23T10:05:00.000Z', '2026-11-23T10:05:00.000Z'],
    ['2026-11-23T10:05:00.001Z', '2026-11-23T10:10:00.000Z'],
    ['2026-11-23T10:09:59.999Z', '2026-11-23T10:10:00.000Z'],
    ['2026-11-23T23:58:00.000Z', '2026-11-24T00:00:00.000Z'],
    ['2026-12-31T23:56:30.000Z', '2027-01-01T00:00:00.000Z'],
  ])('%s → %s', (now, start) => {
    expect(roundUpToFiveMinutes(new Date(now)).toISOString()).toBe(start);
  });
});

describe('escaping and folding', () => {
  test('backslash, semicolon, comma and line breaks are escaped; colons are not', () => {
    expect(escapeIcsText('a\\b;c,d\ne\r\nf: g')).toBe('a\\\\b\\;c\\,d\\ne\\nf: g');
  });

  test('a short line is left alone', () => {
    expect(foldLine('SUMMARY:Acme')).toBe('SUMMARY:Acme');
  });

  test('long lines fold at 75 octets, continuation lines start with a space', () => {
    const line = `DESCRIPTION:${'x'.repeat(200)}`;
    const folded = foldLine(line).split('\r\n');
    expect(folded.length).toBe(3);
    expect(Buffer.byteLength(folded[0])).toBe(75);
    for (const l of folded.slice(1)) {
      expect(l.startsWith(' ')).toBe(true);
      expect(Buffer.byteLength(l)).toBeLessThanOrEqual(75);
    }
    expect(folded.map((l, i) => (i ? l.slice(1) : l)).join('')).toBe(line);
  });

  test('multi-byte characters are never split', () => {
    const line = `SUMMARY:${'ü'.repeat(100)}`;
    const folded = foldLine(line).split('\r\n');
    for (const l of folded) {
      expect(Buffer.byteLength(l)).toBeLessThanOrEqual(75);
      expect(l).not.toContain('\uFFFD');
    }
    expect(folded.map((l, i) => (i ? l.slice(1) : l)).join('')).toBe(line);
  });
});

describe('calendarEntry', () => {
  test('one VEVENT, 30 minutes from now rounded up, CRLF line ends, escaped text', () => {
    const ics = calendarEntry({ uid: 'crm-activity-7@crm', summary: 'Acme, Inc.', description: 'Call back;\nask about v2', now: new Date('2026-11-23T10:02:17.000Z') });
    expect(ics.endsWith('\r\n')).toBe(true);
    expect(ics.split('\r\n').filter((l) => l && !l.startsWith(' ')).every((l) => /^[A-Z-]+[:;]/.test(l))).toBe(true);
    expect(ics).toContain('BEGIN:VCALENDAR\r\nVERSION:2.0\r\n');
    expect(ics).toContain('\r\nBEGIN:VEVENT\r\nUID:crm-activity-7@crm\r\nDTSTAMP:20261123T100217Z\r\n');
    expect(ics).toContain('\r\nDTSTART:20261123T100500Z\r\nDTEND:20261123T103500Z\r\n');
    expect(ics).toContain('\r\nSUMMARY:Acme\\, Inc.\r\n');
    expect(ics).toContain('\r\nDESCRIPTION:Call back\\;\\nask about v2\r\n');
    expect(ics).toContain('END:VEVENT\r\nEND:VCALENDAR\r\n');
  });

  test('icsDateTime drops milliseconds and separators', () => {
    expect(icsDateTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102T030405Z');
  });
});
