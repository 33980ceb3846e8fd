// Render a run as one self-contained HTML page: uPlot's JS and CSS are inlined from
// node_modules, the data is embedded as JSON, and a Content-Security-Policy forbids every
// network fetch — so the page opens offline, from a file, attached to an email, years later.
// uPlot (MIT, ~50 KB) rather than hand-rolled SVG: zoom, a synced crosshair across charts and
// a legend with values under the cursor come free, and it draws 10k-point series instantly.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chartKey, metricCatalog, sectionOrder } from './metrics.ts';
import { formatDuration, formatNumber as fmt } from './format.ts';
import type { MetricsRow, SampleRow } from './rundir.ts';

export interface ReportInput {
  title: string;
  /** Charts to draw instead of those built from `metrics` (a comparison of runs). */
  charts?: Chart[];
  /** A line under the title (what is compared, how). */
  note?: string;
  runPath: string;
  metrics: MetricsRow[];
  samples: SampleRow[];
  configText?: string;
  checkpoints: number[];
  warnings: string[];
  /** Show at most this many samples (the newest). */
  maxSamples: number;
  generatedAt: Date;
}

export interface Chart {
  section: string;
  title: string;
  series: { name: string; description: string }[];
  x: number[];
  ys: (number | null)[][];
}

const NOT_METRICS = new Set(['step', 'wall_time']);

/** Group metric series into charts and charts into sections (by the name's first segment). */
export function buildCharts(rows: readonly MetricsRow[]): Chart[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const row of rows)
    for (const key of Object.keys(row)) if (!NOT_METRICS.has(key) && !seen.has(key)) seen.add(key), names.push(key);
  const byChart = new Map<string, string[]>();
  for (const name of names) {
    const key = chartKey(name);
    byChart.set(key, [...(byChart.get(key) ?? []), name]);
  }
  const rank = (section: string) => {
    const i = sectionOrder.indexOf(section);
    return i < 0 ? sectionOrder.length : i;
  };
  const charts = [...byChart.entries()].map(([key, members]): Chart => {
    // Only the steps where one of this chart's series has a value (eval metrics are sparse).
    const steps = rows.filter((r) => members.some((m) => typeof r[m] === 'number' || r[m] === null));
    return {
      section: key.split(/[/ ]/)[0]!,
      title: members.length === 1 ? members[0]! : key,
      series: members.sort().map((name) => ({ name, description: metricCatalog[name]?.description ?? '' })),
      x: steps.map((r) => r.step),
      ys: members.map((m) => steps.map((r) => (typeof r[m] === 'number' ? (r[m] as number) : null))),
    };
  });
  return charts.sort(
    (a, b) => rank(a.section) - rank(b.section) || a.section.localeCompare(b.section) || a.title.localeCompare(b.title),
  );
}

/**
 * Charts comparing runs: one chart per metric, one line per run (`runs[i].name`), each the mean
 * over that run's row sets (its seeds) at every step where any of them has the metric.
 */
export function buildComparisonCharts(
  runs: readonly { name: string; rowSets: readonly (readonly MetricsRow[])[] }[],
  metrics: readonly string[],
): Chart[] {
  const rank = (section: string) => {
    const i = sectionOrder.indexOf(section);
    return i < 0 ? sectionOrder.length : i;
  };
  const charts = metrics.flatMap((metric): Chart[] => {
    const meanAt = runs.map(({ rowSets }) => {
      const sums = new Map<number, { total: number; n: number }>();
      for (const rows of rowSets) {
        for (const r of rows) {
          const v = r[metric];
          if (typeof v !== 'number') continue;
          const s = sums.get(r.step) ?? { total: 0, n: 0 };
          sums.set(r.step, { total: s.total + v, n: s.n + 1 });
        }
      }
      return sums;
    });
    const x = [...new Set(meanAt.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
    if (x.length === 0) return [];
    return [
      {
        section: metric.split(/[/ ]/)[0]!,
        title: metric,
        series: runs.map((r) => ({ name: r.name, description: metricCatalog[metric]?.description ?? '' })),
        x,
        ys: meanAt.map((m) => x.map((step) => (m.has(step) ? m.get(step)!.total / m.get(step)!.n : null))),
      },
    ];
  });
  return charts.sort((a, b) => rank(a.section) - rank(b.section));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Metrics shown as big numbers at the top when present. */
const HEADLINE = [
  'reward/mean',
  'eval/accuracy',
  'sft/loss',
  'response_length/mean',
  'icepop/masked_frac',
  'mismatch/kl',
  'rollout/tokens_per_s',
  'time/step_s',
];

function headline(charts: Chart[]): string {
  const cards = HEADLINE.flatMap((name) => {
    for (const c of charts) {
      const i = c.series.findIndex((s) => s.name === name);
      if (i < 0) continue;
      const values = c.ys[i]!.filter((v): v is number => v !== null);
      if (values.length === 0) return [];
      const first = values[0]!,
        last = values.at(-1)!;
      return [
        `<div class="card" title="${escapeHtml(c.series[i]!.description)}"><div class="name">${escapeHtml(name)}</div><div class="value">${fmt(last)}</div><div class="from">from ${fmt(first)} at step ${c.x[c.ys[i]!.findIndex((v) => v !== null)]}</div></div>`,
      ];
    }
    return [];
  });
  return cards.length ? `<div class="cards">${cards.join('')}</div>` : '';
}

function nonFiniteCell(rows: readonly MetricsRow[], name: string): string {
  const steps = rows.filter((r) => r[name] === null).map((r) => r.step);
  if (steps.length === 0) return '<td>0</td>';
  return `<td class="bad" title="steps ${steps.slice(0, 20).join(', ')}${steps.length > 20 ? ', …' : ''}"><b>${steps.length}</b> (first at step ${steps[0]})</td>`;
}

function summaryTable(rows: readonly MetricsRow[], charts: Chart[]): string {
  const lines = charts.flatMap((c) =>
    c.series.map((s, i) => {
      const values = c.ys[i]!.filter((v): v is number => v !== null);
      const last = values.at(-1);
      // reduce, not Math.min(...values): spreading 100k+ values overflows the call stack.
      const min = values.length ? values.reduce((a, b) => Math.min(a, b)) : undefined;
      const max = values.length ? values.reduce((a, b) => Math.max(a, b)) : undefined;
      return `<tr><td title="${escapeHtml(s.description)}"><code>${escapeHtml(s.name)}</code></td><td>${fmt(values[0])}</td><td><b>${fmt(last)}</b></td><td>${fmt(min)}</td><td>${fmt(max)}</td><td>${values.length}</td>${nonFiniteCell(rows, s.name)}</tr>`;
    }),
  );
  if (lines.length === 0) return `<p class="empty">No metrics yet (${rows.length} rows in metrics.jsonl).</p>`;
  return `<table class="summary"><thead><tr><th>metric</th><th>first</th><th>last</th><th>min</th><th>max</th><th>points</th><th title="steps where the value was NaN or ±Infinity (logged as null; the line is drawn across them)">NaN/Inf</th></tr></thead><tbody>${lines.join('')}</tbody></table>`;
}

const TEXT_FIELDS = ['prompt', 'response', 'completion', 'text'];

function sampleCard(sample: SampleRow): string {
  const meta: string[] = [];
  const texts: string[] = [];
  for (const [key, value] of Object.entries(sample)) {
    if (key === 'step') continue;
    if (typeof value === 'string' && (TEXT_FIELDS.includes(key) || value.length > 60 || value.includes('\n'))) {
      texts.push(`<div class="field"><div class="label">${escapeHtml(key)}</div><pre>${escapeHtml(value)}</pre></div>`);
    } else if (Array.isArray(value)) {
      meta.push(`<span><b>${escapeHtml(key)}</b> [${value.length}]</span>`);
    } else if (value !== null && typeof value === 'object') {
      meta.push(`<span><b>${escapeHtml(key)}</b> ${escapeHtml(JSON.stringify(value).slice(0, 120))}</span>`);
    } else {
      const cls =
        key === 'reward' || key === 'correct'
          ? value === true || (typeof value === 'number' && value > 0)
            ? ' good'
            : ' bad'
          : '';
      meta.push(
        `<span class="${cls.trim()}"><b>${escapeHtml(key)}</b> ${escapeHtml(typeof value === 'number' ? fmt(value) : String(value))}</span>`,
      );
    }
  }
  return `<div class="sample"><div class="meta"><span class="step">step ${sample.step}</span>${meta.join('')}</div>${texts.join('')}</div>`;
}

let assets: { js: string; css: string } | undefined;
function uplotAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const dir = require.resolve('uplot/package.json').replace(/package\.json$/, 'dist/');
    assets = { js: readFileSync(dir + 'uPlot.iife.min.js', 'utf8'), css: readFileSync(dir + 'uPlot.min.css', 'utf8') };
  }
  return assets;
}

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #fff; --card: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 20px 28px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin-bottom: 12px; } .sub code { font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; background: var(--card); min-width: 150px; }
.card .name { color: var(--muted); font-size: 12px; } .card .value { font-size: 22px; font-weight: 600; } .card .from { color: var(--muted); font-size: 11px; }
.u-legend { font-size: 12px; line-height: 1.2; } .u-legend .u-series { padding: 0 6px; } .u-legend th { font-weight: 500; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 6px 2px; min-width: 0; }
.chart .desc { color: var(--muted); font-size: 12px; margin: 0 6px 4px; min-height: 1em; }
.controls { margin: 10px 0; color: var(--muted); } .controls input { vertical-align: middle; }
table.summary { border-collapse: collapse; font-size: 13px; } table.summary td, table.summary th { padding: 2px 10px; border-bottom: 1px solid var(--line); text-align: right; }
table.summary td:first-child, table.summary th:first-child { text-align: left; }
.sample { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 8px 10px; background: var(--card); }
.sample .meta span { margin-right: 14px; font-size: 13px; } .sample .meta .step { font-weight: 600; }
.sample .good { color: #1a7f37; } .sample .bad { color: #cf222e; }
.sample .label { color: var(--muted); font-size: 12px; margin-top: 6px; }
.sample pre, pre.config { white-space: pre-wrap; word-break: break-word; margin: 2px 0; max-height: 260px; overflow: auto; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 6px; font-size: 12.5px; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 12px; }
.empty { color: var(--muted); } td.bad { color: #cf222e; }
.u-title { font-size: 14px !important; font-weight: 600 !important; }
`;

// Client side: draw each chart with uPlot, sync crosshairs, optional EMA smoothing.
const CLIENT = `
(function () {
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00', '#0598bc', '#bf3989', '#6e7781'];
  function fmt(v) { if (v == null) return '—'; var a = Math.abs(v); if (v !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1); return String(+v.toPrecision(4)); }
  function ema(ys, w) {
    if (!w) return ys;
    var out = [], s = null;
    for (var i = 0; i < ys.length; i++) { var y = ys[i]; if (y == null) { out.push(null); continue; } s = s == null ? y : w * s + (1 - w) * y; out.push(s); }
    return out;
  }
  var plots = [];
  D.charts.forEach(function (c, i) {
    var el = document.getElementById('chart-' + i);
    var opts = {
      title: c.title, width: el.clientWidth - 4, height: 210,
      scales: { x: { time: false } },
      cursor: { sync: { key: 'steps' } },
      legend: { live: true },
      series: [{ label: 'step' }].concat(c.series.map(function (s, j) {
        return { label: s.name, stroke: palette[j % palette.length], width: 1.6, spanGaps: true, points: { show: c.x.length <= 40 }, value: function (u, v) { return fmt(v); } };
      })),
      axes: [{ label: 'step' }, { size: 64, values: function (u, vals) { return vals.map(fmt); } }],
    };
    plots.push({ u: new uPlot(opts, [c.x].concat(c.ys), el), c: c, el: el });
  });
  var slider = document.getElementById('smoothing'), shown = document.getElementById('smoothing-value');
  function smooth() {
    var w = +slider.value; shown.textContent = w.toFixed(2);
    plots.forEach(function (p) { p.u.setData([p.c.x].concat(p.c.ys.map(function (y) { return ema(y, w); }))); });
  }
  slider.addEventListener('input', smooth);
  if (+slider.value) smooth();
  window.addEventListener('resize', function () { plots.forEach(function (p) { p.u.setSize({ width: p.el.clientWidth - 4, height: 210 }); }); });
  document.body.setAttribute('data-charts-drawn', String(plots.length));
})();
`;

export function renderReport(input: ReportInput): string {
  const charts = input.charts ?? buildCharts(input.metrics);
  const { js, css } = uplotAssets();
  const steps = input.metrics.map((r) => r.step);
  const times = input.metrics.map((r) => r.wall_time).filter((t): t is number => typeof t === 'number');
  const duration =
    times.length > 1 ? times.reduce((a, b) => Math.max(a, b)) - times.reduce((a, b) => Math.min(a, b)) : 0;
  const samples = input.samples.slice(-input.maxSamples).reverse();
  const sections = [...new Set(charts.map((c) => c.section))];
  // One grid for all charts (no half-empty rows); the first chart of a section carries its anchor.
  const chartHtml = charts.length
    ? `<div class="grid">${charts
        .map((c, i) => {
          const anchor =
            charts.findIndex((d) => d.section === c.section) === i ? ` id="section-${escapeHtml(c.section)}"` : '';
          return `<div class="chart"${anchor}><div id="chart-${i}"></div><div class="desc">${escapeHtml([...new Set(c.series.map((s) => s.description).filter(Boolean))].join(' · '))}</div></div>`;
        })
        .join('')}</div>`
    : '';
  const ordered = charts;
  const span = steps.length ? `steps ${steps[0]}–${steps.at(-1)}` : 'no steps'; // rows are sorted by step
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)} — ringrl report</title>
<style>${css}</style><style>${STYLE}</style>
</head><body>
<h1>${escapeHtml(input.title)}</h1>
${input.note ? `<p>${escapeHtml(input.note)}</p>` : ''}
<div class="sub"><code>${escapeHtml(input.runPath)}</code> · ${span} · ${input.metrics.length} metric rows · ${charts.length} charts · ${input.samples.length} samples · ${duration ? `${formatDuration(duration)} wall` : ''} · checkpoints: ${input.checkpoints.length ? input.checkpoints.join(', ') : 'none'} · generated ${input.generatedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC</div>
${input.warnings.length ? `<div class="warnings"><b>Damaged lines were skipped:</b><ul>${input.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>` : ''}
<div class="controls">smoothing (EMA) <input id="smoothing" type="range" min="0" max="0.99" step="0.01" value="0"> <span id="smoothing-value">0.00</span> · drag on a chart to zoom, double-click to reset · sections: ${sections.map((s) => `<a href="#section-${escapeHtml(s)}">${escapeHtml(s)}</a>`).join(' ')}</div>
${headline(charts)}
${chartHtml || '<p class="empty">metrics.jsonl has no metric series yet.</p>'}
<h2>Summary</h2>
${summaryTable(input.metrics, input.charts ? ordered.map((c) => ({ ...c, series: c.series.map((x) => ({ ...x, name: `${c.title} · ${x.name}` })) })) : ordered)}
<h2>Samples <span class="sub">(newest ${samples.length} of ${input.samples.length})</span></h2>
${samples.length ? samples.map(sampleCard).join('\n') : '<p class="empty">samples.jsonl is empty.</p>'}
<h2>Config</h2>
${input.configText ? `<pre class="config">${escapeHtml(input.configText)}</pre>` : '<p class="empty">No config.yaml in the run directory.</p>'}
<script type="application/json" id="report-data">${scriptJson({ charts: ordered })}</script>
<script>${js}</script>
<script>${CLIENT}</script>
</body></html>
`;
}
