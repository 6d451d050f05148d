// The dashboard's routes on hono. Every route looks its target up by name (a run in listRuns, an asset in a fixed
// table, an image by its index among the gallery's sampled ones), so a request path never becomes a filesystem
// path: traversal attempts, in any encoding, are plain 404s.
import { Hono } from 'hono';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT } from '../train/trainer.js';
import { asset } from './assets.js';
import { metricsStream } from './events.js';
import { galleryOf, lastGallery, neighbours, thumbnail, type GalleryEntry } from './gallery.js';
import { mapOf } from './map.js';
import { indexPage, runPage } from './page.js';
import { findRun, listRuns, type Run } from './runs.js';

export function dashboard(root: string): Hono {
  const app = new Hono();
  app.get('/', (c) => c.html(indexPage(listRuns(root))));
  app.get('/assets/:name', (c) => {
    const a = asset(c.req.param('name'));
    return a ? c.body(new Uint8Array(a.body), 200, { 'content-type': a.type, 'cache-control': 'max-age=3600' }) : c.notFound();
  });
  app.get('/runs/:name', (c) => {
    const run = findRun(root, c.req.param('name'));
    return run ? c.html(runPage(run)) : c.notFound();
  });
  app.get('/runs/:name/events', (c) => {
    const run = findRun(root, c.req.param('name'));
    return run ? metricsStream(c, run) : c.notFound();
  });
  app.get('/runs/:name/gallery', async (c) => {
    const run = findRun(root, c.req.param('name'));
    return run && existsSync(join(run.dir, CHECKPOINT)) ? c.json((await galleryOf(run)).gallery) : c.notFound();
  });
  app.get('/runs/:name/gallery/:file', async (c) => {
    const entry = sampledRun(findRun(root, c.req.param('name')));
    const index = sampledIndex(entry, /^(\d+)\.png$/.exec(c.req.param('file'))?.[1]);
    return entry && index !== null
      ? c.body(new Uint8Array(await thumbnail(entry.dataset, entry.images[index])), 200, { 'content-type': 'image/png' })
      : c.notFound();
  });
  app.get('/runs/:name/neighbours/:index', (c) => {
    const entry = sampledRun(findRun(root, c.req.param('name')));
    const index = sampledIndex(entry, c.req.param('index'));
    return entry && index !== null ? c.json(neighbours(entry, index)) : c.notFound();
  });
  app.get('/runs/:name/map', (c) => {
    const entry = sampledRun(findRun(root, c.req.param('name')));
    return entry ? c.json(mapOf(entry)) : c.notFound();
  });
  app.onError((e, c) => c.text(e.message, 500));
  app.notFound((c) => c.text('not found', 404));
  return app;
}

/** The run's last gallery, or null: none computed yet (GET /runs/NAME/gallery computes it), or no such run. */
const sampledRun = (run: Run | undefined): GalleryEntry | null => (run && lastGallery(run)) || null;

/** A decimal row among the sampled images, or null: the rest of the training data is not the dashboard's to hand out. */
function sampledIndex(entry: GalleryEntry | null, raw: string | undefined): number | null {
  const index = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : NaN;
  return entry && index < entry.gallery.sampled ? index : null;
}
