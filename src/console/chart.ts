// The campaign page's per-minute chart, drawn on the server as SVG: no chart library, no script,
// and no inline style (the Content-Security-Policy forbids it): colours are SVG presentation
// attributes. One polyline per series over a shared y scale, minute ticks on the x axis, and a
// table beside it for readers without sight of the picture (and for tests).
import { type Html, html } from './html.ts';

export interface Series {
  label: string;
  colour: string;
  values: number[];
}

const WIDTH = 720;
const HEIGHT = 220;
const LEFT = 44;
const RIGHT = 28;
const TOP = 30;
const BOTTOM = 28;

function niceMax(value: number): number {
  if (value <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function hhmm(date: Date): string {
  return date.toISOString().slice(11, 16);
}

/** An SVG line chart of per-minute counts; `minutes` are the x values (UTC). */
export function lineChart(title: string, minutes: Date[], series: Series[]): Html {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i: number) =>
    LEFT + (minutes.length <= 1 ? plotWidth / 2 : (i * plotWidth) / (minutes.length - 1));
  const y = (v: number) => TOP + plotHeight - (v * plotHeight) / max;
  const round = (n: number) => Math.round(n * 10) / 10;
  // niceMax gives 5, or 1, 2 or 5 times a power of ten (10 or more): fifths are whole numbers.
  const gridlines = [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => {
    const value = Math.round(max * f);
    return html`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${round(y(value))}" y2="${round(y(value))}" stroke="#ddd" stroke-width="1"/>
<text x="${LEFT - 6}" y="${round(y(value)) + 4}" text-anchor="end" font-size="11" fill="#555">${value}</text>`;
  });
  const every = Math.max(1, Math.ceil(minutes.length / 8));
  const ticks = minutes.map((m, i) =>
    i % every === 0 || i === minutes.length - 1
      ? html`<text x="${round(x(i))}" y="${HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#555">${hhmm(m)}</text>`
      : '',
  );
  // The first series (sends) is drawn wider, under the others: deliveries that match the sends
  // minute by minute show as a line inside it instead of hiding it.
  const lines = series.map((s, index) => {
    const points = s.values.map((v, i) => `${round(x(i))},${round(y(v))}`).join(' ');
    return minutes.length === 1
      ? html`<circle cx="${round(x(0))}" cy="${round(y(s.values[0] ?? 0))}" r="3" fill="${s.colour}"><title>${s.label}</title></circle>`
      : html`<polyline points="${points}" fill="none" stroke="${s.colour}" stroke-width="${index === 0 ? 5 : 2}"><title>${s.label}</title></polyline>`;
  });
  const legend = series.map(
    (s, i) =>
      html`<rect x="${LEFT + i * 120}" y="6" width="10" height="10" fill="${s.colour}"/>
<text x="${LEFT + 14 + i * 120}" y="15" font-size="12" fill="#222">${s.label}</text>`,
  );
  return html`<svg class="chart" role="img" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">
<title>${title}</title>
${gridlines}
<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${TOP + plotHeight}" stroke="#888" stroke-width="1"/>
${ticks}
${lines}
${legend}
</svg>`;
}

export const COLOURS = {
  send: '#1f6feb',
  delivery: '#2da44e',
  bounce: '#d29922',
  complaint: '#cf222e',
} as const;
