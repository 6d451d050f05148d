// The dashboard's HTML: the index of runs, and one run's page whose script draws the curves with uPlot and keeps
// them live from the server-sent events (/runs/NAME/events).
import type { Run } from './runs.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
const runUrl = (name: string) => `/runs/${encodeURIComponent(name)}`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
#status { color: #555; }
table.confusion { border-collapse: collapse; font-variant-numeric: tabular-nums; }
#gallery img, #neighbours img { cursor: pointer; width: 64px; height: 64px; object-fit: cover; margin: 1px; image-rendering: pixelated; }
table.confusion td, table.confusion th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/uPlot.min.css"><style>${STYLE}</style></head>
<body${body}</body></html>`;
}

export function indexPage(runs: Run[]): string {
  const items = runs.map((r) => `<li><a href="${runUrl(r.name)}">${escapeHtml(r.name)}</a></li>`).join('\n');
  return layout('swav runs', `><h1>swav runs</h1>${runs.length ? `<ul>${items}</ul>` : '<p>No run directories here yet.</p>'}`);
}

export function runPage(run: Run): string {
  return layout(
    `swav: ${run.name}`,
    ` data-base="${runUrl(run.name)}"><h1>swav run ${escapeHtml(run.name)}</h1>
<p id="status">waiting for metrics…</p>
<h2>Training</h2><div class="charts" id="train"></div>
<h2>Prototype usage</h2>
<p>epoch <input type="range" id="usage-epoch" min="1" max="1" value="1" disabled> <span id="usage-caption">none yet</span></p>
<div class="charts" id="usage"></div>
<h2>Prototype gallery</h2>
<p><button id="gallery-compute">compute from the last checkpoint</button> <span id="gallery-caption">the most used
prototypes and the training images whose codes pick them</span></p>
<div id="gallery"></div>
<h3>Map <span id="map-caption">(UMAP of the sampled images' features, coloured by prototype; click a point)</span></h3>
<canvas id="map" width="460" height="460" data-points="0" style="border: 1px solid #ddd"></canvas>
<h3>Nearest neighbours <span id="neighbours-caption">(click an image)</span></h3><div id="neighbours"></div>
<h2>Evaluations</h2><div class="charts" id="evals"></div>
<h3>kNN confusion matrix <span id="confusion-epoch"></span></h3><div id="confusion">none yet</div>
<script src="/assets/uPlot.iife.min.js"></script><script>${CLIENT}</script>`,
  );
}

/** The browser side, plain JavaScript: one uPlot per curve; each chart's point count in data-points (for tests). */
const CLIENT = `
const runBase = document.body.dataset.base;
const TRAIN = [['loss', 'loss'], ['lr', 'learning rate'], ['samples_per_s', 'samples per second'], ['prototype_entropy', 'prototype usage entropy']];
const charts = {};
function chart(parent, key, title, xLabel, bars) {
  const el = document.createElement('div');
  el.id = 'chart-' + key;
  el.dataset.points = '0';
  document.getElementById(parent).append(el);
  // bars: half a bar of room at either end, so the first and last are whole
  const x = bars ? { time: false, range: (_, min, max) => [min - 0.5, max + 0.5] } : { time: false };
  const u = new uPlot({ title, width: 460, height: 220, scales: { x },
    series: [{ label: xLabel }, bars ? { label: title, fill: '#1f77b4', paths: uPlot.paths.bars({ size: [0.9] }), points: { show: false } }
      : { label: title, stroke: '#1f77b4', width: 1.5, points: { show: false } }],
    axes: [{ label: xLabel }, {}] }, [[], []], el);
  charts[key] = { el, u, xs: [], ys: [] };
}
for (const [key, title] of TRAIN) chart('train', key, title, 'iteration');
chart('evals', 'knn_top1', 'kNN top-1 (%)', 'epoch');
chart('usage', 'usage', 'picks per prototype in the epoch', 'prototype', true);
charts.usage.el.dataset.epochs = '0';
const usage = [];
const slider = document.getElementById('usage-epoch');
function showUsage(i) {
  const e = usage[i], c = charts.usage;
  c.xs = e.counts.map((_, k) => k);
  c.ys = e.counts;
  slider.value = String(i + 1);
  document.getElementById('usage-caption').textContent = e.epoch + ': ' + e.counts.filter((n) => n > 0).length + ' of ' +
    e.counts.length + ' prototypes picked';
}
slider.addEventListener('input', () => { showUsage(Number(slider.value) - 1); take([]); });
function epochUsage(r) {
  const following = Number(slider.value) === usage.length; // at the latest epoch: stay there as new ones come
  usage.push({ epoch: r.epoch, counts: r.prototype_usage });
  Object.assign(slider, { max: String(usage.length), disabled: false });
  charts.usage.el.dataset.epochs = String(usage.length);
  if (following || usage.length === 1) showUsage(usage.length - 1);
}
function push(key, x, y) { if (typeof y === 'number') { charts[key].xs.push(x); charts[key].ys.push(y); } }
function confusion(m) {
  const names = m.classes || m.matrix.map((_, i) => String(i));
  const head = '<tr><th>true ↓ predicted →</th>' + names.map((n) => '<th>' + esc(n) + '</th>').join('') + '</tr>';
  const max = Math.max(1, ...m.matrix.flat());
  const rows = m.matrix.map((row, i) => '<tr><th>' + esc(names[i]) + '</th>' + row.map((v) =>
    '<td style="background: rgba(31,119,180,' + (v / max).toFixed(2) + ')">' + v + '</td>').join('') + '</tr>');
  document.getElementById('confusion').innerHTML = '<table class="confusion">' + head + rows.join('') + '</table>';
  document.getElementById('confusion-epoch').textContent = '(epoch ' + m.epoch + ')';
}
function esc(s) { const d = document.createElement('span'); d.textContent = String(s); return d.innerHTML; }
function take(records) {
  let last;
  for (const r of records) {
    if (r.type === 'train') { for (const [key] of TRAIN) push(key, r.iteration, r[key]); last = r; }
    else if (r.type === 'epoch' && Array.isArray(r.prototype_usage)) epochUsage(r);
    else if (r.type === 'eval' && r.metric === 'knn_top1') push('knn_top1', r.epoch ?? charts.knn_top1.xs.length + 1, 100 * r.value);
    else if (r.type === 'eval' && r.metric === 'knn_confusion') confusion(r);
  }
  for (const c of Object.values(charts)) { c.u.setData([c.xs, c.ys]); c.el.dataset.points = String(c.xs.length); }
  if (last) document.getElementById('status').textContent = 'epoch ' + last.epoch + ', iteration ' + last.iteration +
    ': loss ' + last.loss.toFixed(4) + ' (updated ' + new Date().toLocaleTimeString() + ')';
}
const button = document.getElementById('gallery-compute');
button.addEventListener('click', async () => {
  button.disabled = true;
  const caption = document.getElementById('gallery-caption');
  caption.textContent = 'computing…';
  const res = await fetch(runBase + '/gallery');
  button.disabled = false;
  if (!res.ok) { caption.textContent = 'no gallery: ' + await res.text(); return; }
  const g = await res.json();
  caption.textContent = 'checkpoint of epoch ' + g.epoch + ', ' + g.sampled + ' training images sampled';
  document.getElementById('gallery').innerHTML = g.prototypes.map((p) => '<div class="prototype"><b>prototype ' + p.prototype +
    '</b> (' + p.count + (p.count === 1 ? ' image' : ' images') + ')<br>' + p.images.map((i) => thumb(i)).join('') + '</div>').join('');
  await drawMap();
});
const thumb = (i, title) => '<img alt="image ' + i + '" data-image="' + i + '" title="' + (title || 'image ' + i) + '" src="' + runBase + '/gallery/' + i + '.png">';
async function showNeighbours(i) {
  const res = await fetch(runBase + '/neighbours/' + i);
  if (!res.ok) return;
  const ns = await res.json();
  document.getElementById('neighbours-caption').textContent = 'of image ' + i + ' (cosine similarity of the trunk features)';
  document.getElementById('neighbours').innerHTML = thumb(i) + ' → ' + ns.map((n) => thumb(n.image, 'image ' + n.image + ': ' + n.similarity.toFixed(3))).join('');
}
const map = document.getElementById('map');
let mapPoints = [];
async function drawMap() {
  const res = await fetch(runBase + '/map');
  if (!res.ok) { document.getElementById('map-caption').textContent = 'no map: ' + await res.text(); return; }
  const ps = await res.json();
  const [xs, ys] = [ps.map((p) => p.x), ps.map((p) => p.y)];
  const scale = (v, lo, hi) => 10 + ((v - lo) / (hi - lo || 1)) * (map.width - 20);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  mapPoints = ps.map((p) => ({ ...p, px: scale(p.x, x0, x1), py: scale(p.y, y0, y1) }));
  const g = map.getContext('2d');
  g.clearRect(0, 0, map.width, map.height);
  for (const p of mapPoints) {
    g.fillStyle = 'hsl(' + ((p.prototype * 137.5) % 360) + ', 70%, 45%)';
    g.beginPath(); g.arc(p.px, p.py, 3, 0, 2 * Math.PI); g.fill();
  }
  map.dataset.points = String(mapPoints.length);
}
map.addEventListener('click', (e) => {
  const r = map.getBoundingClientRect();
  const d = (p) => (p.px - (e.clientX - r.left)) ** 2 + (p.py - (e.clientY - r.top)) ** 2;
  const nearest = mapPoints.reduce((a, p) => (a && d(a) <= d(p) ? a : p), null);
  if (nearest) showNeighbours(nearest.image);
});
for (const id of ['gallery', 'neighbours']) {
  document.getElementById(id).addEventListener('click', (e) => { if (e.target.dataset.image) showNeighbours(Number(e.target.dataset.image)); });
}
const source = new EventSource(runBase + '/events');
source.addEventListener('metrics', (e) => take(JSON.parse(e.data)));
source.addEventListener('reset', () => {
  for (const c of Object.values(charts)) { c.xs = []; c.ys = []; }
  usage.length = 0;
  Object.assign(slider, { max: '1', value: '1', disabled: true });
  take([]);
});
`;
