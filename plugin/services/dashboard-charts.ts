import type { ModuleData, Column } from './dashboard-data';
import { formatMoney, minorDigits } from './money';

/**
 * Server-side SVG charts for overview modules (SPEC D2/D4): horizontal bars, lines over time and a funnel,
 * hand-written so no chart library or script is needed (the CSP allows neither inline scripts nor inline
 * styles: colours come from classes in public/crm.css). A baseline is drawn beside the current data as a
 * hatched bar, a dashed line or a dashed outline. Every chart is also shown as a table for screen readers.
 */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const r1 = (n: number) => Math.round(n * 10) / 10;

/** "12 500.00 EUR", "3", "45.5 %": a cell of the table view. */
export function formatValue(value: number | null | undefined, kind: Column['kind'], currency: string): string {
  if (value === null || value === undefined) return '–';
  if (kind === 'money') return formatMoney(value, currency);
  if (kind === 'percent') return `${(value / 100).toFixed(1)} %`;
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}

/** Short axis and bar labels: 1.2k, 3.4M (money in major units of the currency). */
export function shortValue(value: number, kind: Column['kind'], currency: string): string {
  const n = kind === 'money' ? value / 10 ** minorDigits(currency) : kind === 'percent' ? value / 100 : value;
  const abs = Math.abs(n);
  const text = abs >= 1e9 ? `${r1(n / 1e9)}G` : abs >= 1e6 ? `${r1(n / 1e6)}M` : abs >= 1e3 ? `${r1(n / 1e3)}k` : abs >= 10 ? `${Math.round(n)}` : `${Math.round(n * 100) / 100}`;
  return kind === 'percent' ? `${text} %` : text;
}

export interface Baseline { name: string; data: ModuleData }

/** A baseline's value for a row and series, matched by row key (rows may have come or gone since). */
export function baselineValue(baseline: Baseline | null, rowKey: string, series: string): number | null {
  const row = baseline?.data.rows.find((r) => r.key === rowKey);
  const v = row?.values[series];
  return v === undefined ? null : v;
}

const WIDTH = 480;
const LABEL_W = 118;
const VALUE_W = 64;

function niceMax(max: number): number {
  if (max <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= max) return m * exp;
  return 10 * exp;
}

function clip(label: string, max = 18): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

function svgOpen(height: number, label: string, cls: string): string {
  return `<svg class="chart ${cls}" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${esc(label)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(label)}</title>`;
}

function legend(data: ModuleData, baseline: Baseline | null, y: number, startX = LABEL_W): string {
  let x = startX;
  let out = '';
  data.series.forEach((key, i) => {
    const col = data.columns.find((c) => c.key === key)!;
    out += `<rect x="${x}" y="${y - 9}" width="10" height="10" class="series-${i}"/><text x="${x + 14}" y="${y}" class="legend">${esc(col.label)}</text>`;
    x += 22 + col.label.length * 6;
    if (baseline) {
      const name = `${col.label} (${baseline.name})`;
      out += `<rect x="${x}" y="${y - 9}" width="10" height="10" class="series-${i} baseline"/><text x="${x + 14}" y="${y}" class="legend">${esc(clip(name, 40))}</text>`;
      x += 22 + Math.min(name.length, 40) * 6;
    }
  });
  return out;
}

function bars(data: ModuleData, baseline: Baseline | null, title: string): string {
  const kinds = data.columns.filter((c) => data.series.includes(c.key));
  const perRow = data.series.length * (baseline ? 2 : 1);
  const barH = 12;
  const rowH = perRow * (barH + 2) + 12;
  const top = 24;
  const height = top + Math.max(1, data.rows.length) * rowH + 8;
  const values = data.rows.flatMap((r) => data.series.flatMap((s) => [r.values[s] ?? 0, baselineValue(baseline, r.key, s) ?? 0]));
  const max = niceMax(Math.max(0, ...values));
  const area = WIDTH - LABEL_W - VALUE_W;
  let out = svgOpen(height, title, 'bars') + legend(data, baseline, 14);
  if (!data.rows.length) out += `<text x="${LABEL_W}" y="${top + 20}" class="empty-chart">No data in this period</text>`;
  data.rows.forEach((row, i) => {
    const y0 = top + i * rowH + 6;
    out += `<text x="${LABEL_W - 8}" y="${y0 + (perRow * (barH + 2)) / 2 + 4}" class="label" text-anchor="end">${esc(clip(row.label))}</text>`;
    let k = 0;
    // An empty row (every value 0) gets no value labels: a column of zeros is noise; the table has them.
    const rowEmpty = data.series.every((s) => !row.values[s] && !baselineValue(baseline, row.key, s));
    data.series.forEach((s, si) => {
      const draw = (v: number | null, cls: string) => {
        const y = y0 + k++ * (barH + 2);
        const w = v && v > 0 ? Math.max(1, (v / max) * area) : 0;
        out += `<rect x="${LABEL_W}" y="${y}" width="${r1(w)}" height="${barH}" class="series-${si}${cls}"/>`;
        if (v !== null && !rowEmpty) out += `<text x="${r1(LABEL_W + w + 4)}" y="${y + barH - 2}" class="value">${esc(shortValue(v, kinds[si].kind, data.currency))}</text>`;
      };
      draw(row.values[s] ?? null, '');
      if (baseline) draw(baselineValue(baseline, row.key, s), ' baseline');
    });
  });
  out += `<line x1="${LABEL_W}" y1="${top}" x2="${LABEL_W}" y2="${height - 6}" class="axis"/>`;
  return `${out}</svg>`;
}

function line(data: ModuleData, baseline: Baseline | null, title: string): string {
  const height = 240;
  const left = 70;
  const right = 20;
  const top = 30;
  const bottom = 40;
  const plotW = WIDTH - left - right;
  const plotH = height - top - bottom;
  const n = data.rows.length;
  const values = data.rows.flatMap((r) => data.series.flatMap((s) => [r.values[s] ?? 0, baselineValue(baseline, r.key, s) ?? 0]));
  const max = niceMax(Math.max(0, ...values));
  const kind = data.columns.find((c) => c.key === data.series[0])?.kind ?? 'count';
  const x = (i: number) => left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  let out = svgOpen(height, title, 'line');
  out += legend(data, baseline, 14, left);
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4;
    out += `<line x1="${left}" y1="${r1(y(v))}" x2="${WIDTH - right}" y2="${r1(y(v))}" class="grid"/><text x="${left - 6}" y="${r1(y(v) + 4)}" class="tick" text-anchor="end">${esc(shortValue(v, kind, data.currency))}</text>`;
  }
  // As many x labels as fit (about 50 units each), evenly spread.
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 50))));
  data.rows.forEach((row, i) => {
    if (i % every === 0) out += `<text x="${r1(x(i))}" y="${height - bottom + 16}" class="tick" text-anchor="middle">${esc(clip(row.label, 10))}</text>`;
  });
  const path = (vals: (number | null)[]) => vals.map((v, i) => `${r1(x(i))},${r1(y(v ?? 0))}`).join(' ');
  data.series.forEach((s, si) => {
    if (baseline) out += `<polyline points="${path(data.rows.map((r) => baselineValue(baseline, r.key, s)))}" class="stroke-${si} baseline" fill="none"/>`;
    out += `<polyline points="${path(data.rows.map((r) => r.values[s] ?? 0))}" class="stroke-${si}" fill="none"/>`;
    data.rows.forEach((r, i) => { out += `<circle cx="${r1(x(i))}" cy="${r1(y(r.values[s] ?? 0))}" r="3" class="series-${si}"><title>${esc(`${r.label}: ${formatValue(r.values[s], kind, data.currency)}`)}</title></circle>`; });
  });
  if (!n) out += `<text x="${left + 10}" y="${top + 20}" class="empty-chart">No data in this period</text>`;
  return `${out}</svg>`;
}

/** A funnel: each status a band whose width is its amount (the first series), narrowing to the next. */
function funnel(data: ModuleData, baseline: Baseline | null, title: string): string {
  const s = data.series[0];
  const kind = data.columns.find((c) => c.key === s)?.kind ?? 'money';
  const bandH = 30;
  const top = 24;
  const height = top + Math.max(1, data.rows.length) * (bandH + 4) + 8;
  const area = WIDTH - LABEL_W - VALUE_W - 20;
  const centre = LABEL_W + 10 + area / 2;
  const values = data.rows.flatMap((r) => [r.values[s] ?? 0, baselineValue(baseline, r.key, s) ?? 0]);
  const max = Math.max(1, ...values);
  const width = (v: number) => Math.max(6, (v / max) * area);
  const hasCount = data.columns.some((c) => c.key === 'count');
  const legendColumns = data.columns.map((c) => (c.key === s && hasCount ? { ...c, label: `${c.label} · number` } : c));
  let out = svgOpen(height, title, 'funnel') + legend({ ...data, columns: legendColumns, series: [s] }, baseline, 14);
  data.rows.forEach((row, i) => {
    const y = top + i * (bandH + 4);
    const w = width(row.values[s] ?? 0);
    const next = i + 1 < data.rows.length ? width(data.rows[i + 1].values[s] ?? 0) : w * 0.85;
    const bottomW = Math.min(w, Math.max(next, w * 0.9));
    out += `<polygon points="${r1(centre - w / 2)},${y} ${r1(centre + w / 2)},${y} ${r1(centre + bottomW / 2)},${y + bandH} ${r1(centre - bottomW / 2)},${y + bandH}" class="series-${i % 8} band"/>`;
    const b = baselineValue(baseline, row.key, s);
    if (baseline && b !== null) out += `<rect x="${r1(centre - width(b) / 2)}" y="${y + 2}" width="${r1(width(b))}" height="${bandH - 4}" class="baseline-outline" fill="none"/>`;
    out += `<text x="${LABEL_W - 8}" y="${y + bandH / 2 + 4}" class="label" text-anchor="end">${esc(clip(row.label))}</text>`;
    const count = row.values.count;
    out += `<text x="${WIDTH - VALUE_W - 4}" y="${y + bandH / 2 + 4}" class="value">${esc(`${shortValue(row.values[s] ?? 0, kind, data.currency)}${count !== undefined && count !== null ? ` · ${count}` : ''}`)}</text>`;
  });
  if (!data.rows.length) out += `<text x="${LABEL_W}" y="${top + 20}" class="empty-chart">No data in this period</text>`;
  return `${out}</svg>`;
}

/** The chart of a module as SVG markup (already escaped), or '' for "table only". */
export function renderChart(data: ModuleData, title: string, baseline: Baseline | null = null): string {
  if (data.chart === 'table' || !data.series.length) return '';
  if (data.chart === 'line') return line(data, baseline, title);
  if (data.chart === 'funnel') return funnel(data, baseline, title);
  return bars(data, baseline, title);
}

/** CSV of a module's table (RFC 4180 quoting; a leading =, +, - or @ is defused against spreadsheet formulas). */
export function moduleCsv(data: ModuleData, baseline: Baseline | null = null): string {
  const cell = (v: string) => {
    const safe = /^[=+\-@\t\r]/.test(v) && !/^-?\d/.test(v) ? `'${v}` : v;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const plain = (v: number | null | undefined, kind: Column['kind']) => {
    if (v === null || v === undefined) return '';
    if (kind === 'money') {
      const digits = minorDigits(data.currency);
      return digits ? (v / 10 ** digits).toFixed(digits) : String(v);
    }
    return kind === 'percent' ? (v / 100).toFixed(2) : String(v);
  };
  const header = ['Label', ...data.columns.map((c) => (c.kind === 'money' ? `${c.label} (${data.currency})` : c.label))];
  if (baseline) header.push(...data.series.map((s) => `${data.columns.find((c) => c.key === s)?.label} (${baseline.name})`));
  const lines = [header.map(cell).join(',')];
  for (const r of data.rows) {
    const cells = [r.label, ...data.columns.map((c) => plain(r.values[c.key], c.kind))];
    if (baseline) cells.push(...data.series.map((s) => plain(baselineValue(baseline, r.key, s), data.columns.find((c) => c.key === s)?.kind ?? 'count')));
    lines.push(cells.map(cell).join(','));
  }
  if (data.totals) lines.push(['Total', ...data.columns.map((c) => plain(data.totals![c.key], c.kind))].map(cell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
