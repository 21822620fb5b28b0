// Italian formatting of the dashboard's numbers, durations and dates, in
// Rome's time zone (Intl, it-IT first).
import { describe, it, expect } from 'vitest';
import { num, duration, skew, isDay, dateLabel, stamp, lastMonths, thisMonth, clock } from '../../src/dashboard/format';

describe('dashboard formatting in it-IT', () => {
  const cases: [string, string, string][] = [
    ['num', num(12345.678, 1), '12.345,7'],
    ['duration seconds', duration(42), '42s'],
    ['duration minutes', duration(125), '2min'],
    ['duration hours', duration(5400), '1,5h'],
    ['duration days', duration(3 * 86400), '3gg'],
    ['skew ahead', skew(125_000), '+2min'],
    ['skew behind', skew(-40_000), '−40s'],
    ['skew none', skew(200), '0s'],
    ['a date field at midnight UTC is that day', dateLabel('2026-11-28 00:00:00.000Z'), '28 nov 2026'],
    ['a day', stamp('2026-03-01'), '1 mar 2026'],
    ['a time, in Rome', stamp('2026-11-28 14:05:00.000Z'), '28 nov, 15:05'],
    ['summer time in Rome', clock(new Date('2026-07-01T10:00:00Z')), '12:00'],
    ['month in Rome at new year', thisMonth(new Date('2026-12-31T23:30:00Z')), '2027-01'],
  ];
  for (const [name, got, want] of cases) {
    it(name, () => expect(got, `${name}: got ${got}, want ${want}`).toBe(want));
  }
  it('tells a day from a time', () => {
    expect(isDay('2026-11-28')).toBe(true);
    expect(isDay('2026-11-28 00:00:00.000Z')).toBe(true);
    expect(isDay('2026-11-28 09:00:00.000Z')).toBe(false);
  });
  it('names the last months in Italian, newest first, across a year', () => {
    const m = lastMonths(3, new Date('2026-01-15T10:00:00Z'));
    expect(m).toEqual([
      { value: '2026-01', label: 'gennaio 2026' },
      { value: '2025-12', label: 'dicembre 2025' },
      { value: '2025-11', label: 'novembre 2025' },
    ]);
  });
});
