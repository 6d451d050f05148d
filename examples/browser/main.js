// The browser example: the exported trunk run by onnxruntime-web on an image the user drops, and the gallery's
// prototypes nearest to it (index.html says what "nearest" means here). The export directory (model, gallery.json,
// features, thumbnails) is served under /export/, onnxruntime-web from node_modules under /ort/ (serve.mjs).
import * as ort from '/ort/ort.wasm.min.mjs';

// the wasm files from the same server, never a CDN; one thread, so the page needs no cross-origin isolation
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;

const SHOWN = 5; // prototypes
const PER_PROTOTYPE = 8; // images shown of each

const status = document.getElementById('status');
let gallery, features, session;

/**
 * The model's input for an image file, as the training data's evaluation transform makes it (gallery.input): the
 * shorter side resized to `resize` (the browser's own resampling), a center crop, (pixel / 255 - mean) / std.
 */
async function preprocess(blob) {
  const { channels, resize, height, width, mean, std } = gallery.input;
  // the file's own pixel values: no colour management, no premultiplied alpha
  const image = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  // torchvision's Resize(resize): the shorter side becomes `resize`, the longer floor(resize * long / short)
  const [w, h] =
    image.width <= image.height
      ? [resize, Math.floor((resize * image.height) / image.width)]
      : [Math.floor((resize * image.width) / image.height), resize];
  const canvas = document.getElementById('seen');
  [canvas.width, canvas.height] = [width, height];
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, -Math.round((w - width) / 2), -Math.round((h - height) / 2), w, h);
  image.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const input = new Float32Array(channels * plane);
  for (let i = 0; i < plane; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    // a one-channel model gets PIL's luma (exact for gray pixels)
    const values = channels === 1 ? [(r * 299 + g * 587 + b * 114) / 1000] : [r, g, b];
    values.forEach((v, c) => {
      input[c * plane + i] = (v / 255 - mean[c]) / std[c];
    });
  }
  return input;
}

/** The trunk's features of one preprocessed image. */
async function embed(input) {
  const { channels, height, width } = gallery.input;
  const out = await session.run({ image: new ort.Tensor('float32', input, [1, channels, height, width]) });
  return out.features.data;
}

/** Each sampled image's cosine similarity to features `f` (the gallery's rows are normalized already). */
function similarities(f) {
  const { rows, dim } = gallery.features;
  const norm = Math.hypot(...f) || 1;
  return Array.from({ length: rows }, (_, r) => {
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += features[r * dim + j] * f[j];
    return dot / norm;
  });
}

/** The prototypes, nearest first: each as near as its most similar image; its images most similar first. */
function nearestPrototypes(sims) {
  const byPrototype = new Map();
  gallery.images.forEach((image, row) => {
    if (!byPrototype.has(image.prototype)) byPrototype.set(image.prototype, []);
    byPrototype.get(image.prototype).push({ ...image, row, similarity: sims[row] });
  });
  return [...byPrototype]
    .map(([prototype, images]) => ({ prototype, images: images.sort((a, b) => b.similarity - a.similarity) }))
    .sort((a, b) => b.images[0].similarity - a.images[0].similarity);
}

function figure(image) {
  const fig = document.createElement('figure');
  const img = document.createElement('img');
  img.src = `export/${image.file}`;
  img.alt = img.title = `training image ${image.index}`;
  img.dataset.row = image.row;
  const caption = document.createElement('figcaption');
  caption.textContent = image.similarity.toFixed(3);
  fig.append(img, caption);
  return fig;
}

function show(ranked) {
  document.getElementById('prototypes').replaceChildren(
    ...ranked.slice(0, SHOWN).map((p, rank) => {
      const section = document.createElement('section');
      section.className = 'prototype';
      section.dataset.prototype = p.prototype;
      const title = document.createElement('h3');
      title.textContent =
        `${rank + 1}. prototype ${p.prototype}: nearest image ${p.images[0].similarity.toFixed(3)}, ` +
        `picked by ${p.images.length} of ${gallery.images.length} sampled training images`;
      section.append(title, ...p.images.slice(0, PER_PROTOTYPE).map(figure));
      return section;
    }),
  );
  document.querySelector('.prototype figure')?.classList.add('nearest');
}

async function handle(file) {
  status.textContent = `${file.name}: embedding...`;
  try {
    const input = await preprocess(file);
    const started = performance.now();
    const f = await embed(input);
    const ranked = nearestPrototypes(similarities(f));
    show(ranked);
    status.textContent = `${file.name}: ${f.length} features in ${(performance.now() - started).toFixed(0)} ms`;
    // what the page computed, for its test (test/examples/browser.test.ts) and the console
    window.swavResult = { name: file.name, input: [...input], features: [...f], prototypes: ranked.map((p) => p.prototype) };
  } catch (e) {
    status.textContent = `${file.name}: ${e.message}`;
  }
}

// one image at a time: a session runs one inference at once
let queue = Promise.resolve();
const accept = (file) => {
  if (file) queue = queue.then(() => handle(file));
};

/** A file of the export directory. */
async function exported(path) {
  const res = await fetch(`export/${path}`);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${res.statusText}`);
  return res;
}

async function start() {
  gallery = await (await exported('gallery.json')).json();
  features = new Float32Array(await (await exported(gallery.features.file)).arrayBuffer());
  if (features.length !== gallery.features.rows * gallery.features.dim)
    throw new Error(`${gallery.features.file} does not hold ${gallery.features.rows} x ${gallery.features.dim} floats`);
  session = await ort.InferenceSession.create(`export/${gallery.model}`);
  const drop = document.getElementById('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    accept(e.dataTransfer.files[0]);
  });
  document.getElementById('file').addEventListener('change', (e) => accept(e.target.files[0]));
  const { channels, height, width } = gallery.input;
  status.textContent = `ready: ${channels === 1 ? 'gray' : 'RGB'} ${width} x ${height} input, ${gallery.images.length} training images in the gallery`;
  document.body.dataset.state = 'ready';
}

start().catch((e) => {
  status.textContent = `could not load the export directory: ${e.message}`;
  document.body.dataset.state = 'error';
});
