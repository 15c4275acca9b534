/** O6: a calendar entry (RFC 5545 iCalendar) for a follow-up on a sales activity. Pure functions: "now" is passed in. */

const FIVE_MINUTES = 5 * 60_000;

/** The next whole five minutes at or after `now` (10:02 → 10:05, 10:05:00 → 10:05, 10:05:01 → 10:10). */
export function roundUpToFiveMinutes(now: Date): Date {
  return new Date(Math.ceil(now.getTime() / FIVE_MINUTES) * FIVE_MINUTES);
}

/** UTC date-time in the iCalendar basic form: 20261123T100500Z. */
export function icsDateTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Control characters a TEXT value may not hold (RFC 5545 §3.1: none but HTAB; line breaks are escaped). */
// eslint-disable-next-line no-control-regex
const NOT_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/** TEXT value escaping (RFC 5545 §3.3.11): backslash, semicolon, comma, and line breaks as \n; other controls dropped. */
export function escapeIcsText(value: string): string {
  return value.replace(NOT_IN_TEXT, '').replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r\n|\r|\n/g, '\\n');
}

/**
 * Folds a content line at 75 octets (RFC 5545 §3.1): continuation lines start with one space, which counts
 * towards their 75. Never splits a UTF-8 character.
 */
export function foldLine(line: string): string {
  const parts: string[] = [];
  let current = '';
  let octets = 0;
  let limit = 75;
  for (const ch of line) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (octets + size > limit) {
      parts.push(current);
      current = '';
      octets = 0;
      limit = 74;
    }
    current += ch;
    octets += size;
  }
  parts.push(current);
  return parts.join('\r\n ');
}

export interface CalendarEntry {
  uid: string;
  summary: string;
  description: string;
  now: Date;
  /** Minutes; O6 says 30. */
  durationMinutes?: number;
}

/** A VCALENDAR with one VEVENT starting at `now` rounded up to five minutes, CRLF line ends, folded lines. */
export function calendarEntry(entry: CalendarEntry): string {
  const start = roundUpToFiveMinutes(entry.now);
  const end = new Date(start.getTime() + (entry.durationMinutes ?? 30) * 60_000);
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//CRM plugin//Sales activities//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:${escapeIcsText(entry.uid)}`,
    `DTSTAMP:${icsDateTime(entry.now)}`,
    `DTSTART:${icsDateTime(start)}`,
    `DTEND:${icsDateTime(end)}`,
    `SUMMARY:${escapeIcsText(entry.summary)}`,
    `DESCRIPTION:${escapeIcsText(entry.description)}`,
    'END:VEVENT',
    'END:VCALENDAR',
  ];
  return `${lines.map(foldLine).join('\r\n')}\r\n`;
}
