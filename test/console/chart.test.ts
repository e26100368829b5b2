import test from 'ava';
import { lineChart } from '../../src/console/chart.ts';

const minutes = [0, 1, 2].map((m) => new Date(Date.UTC(2026, 11, 7, 6, m)));

function labels(svg: string): string[] {
  return [...svg.matchAll(/text-anchor="end" font-size="11" fill="#555">(\d+)</g)].map(
    (m) => m[1] as string,
  );
}

test('gridlines are whole numbers from 0 to a rounded top', (t) => {
  const svg = lineChart('t', minutes, [{ label: 'sends', colour: '#00f', values: [3, 7, 1] }]).text;
  t.deepEqual(labels(svg), ['0', '2', '4', '6', '8', '10']);
  const quiet = lineChart('t', minutes, [{ label: 'sends', colour: '#00f', values: [0, 1, 0] }]);
  t.deepEqual(labels(quiet.text), ['0', '1', '2', '3', '4', '5']);
  const busy = lineChart('t', minutes, [{ label: 'sends', colour: '#00f', values: [840, 0, 12] }]);
  t.deepEqual(labels(busy.text), ['0', '200', '400', '600', '800', '1000']);
});

test('one line per series, the first drawn wider; one minute is a point', (t) => {
  const svg = lineChart('t', minutes, [
    { label: 'sends', colour: '#00f', values: [1, 2, 3] },
    { label: 'deliveries', colour: '#0f0', values: [1, 2, 3] },
  ]).text;
  t.is(svg.match(/<polyline /g)?.length, 2);
  t.regex(svg, /stroke="#00f" stroke-width="5"/);
  t.regex(svg, /stroke="#0f0" stroke-width="2"/);
  t.false(/ style=/.test(svg));
  const one = lineChart('t', minutes.slice(0, 1), [{ label: 's', colour: '#00f', values: [4] }]);
  t.regex(one.text, /<circle cx="[\d.]+" cy="[\d.]+" r="3" fill="#00f">/);
});

test('labels and the title are text, not markup', (t) => {
  const svg = lineChart('<b>title</b>', minutes, [
    { label: '<script>x</script>', colour: '#00f', values: [1, 2, 3] },
  ]).text;
  t.false(svg.includes('<script>'));
  t.true(svg.includes('&lt;script&gt;x&lt;/script&gt;'));
  t.true(svg.includes('<title>&lt;b&gt;title&lt;/b&gt;</title>'));
});
