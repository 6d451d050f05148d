// The dashboard's routes on hono. Every route looks its target up by name (a run in listRuns, an asset in a fixed
// table), so a request path never becomes a filesystem path: traversal attempts, in any encoding, are plain 404s.
import { Hono } from 'hono';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT } from '../train/trainer.js';
import { asset } from './assets.js';
import { metricsStream } from './events.js';
import { galleryOf, thumbnail } from './gallery.js';
import { indexPage, runPage } from './page.js';
import { findRun, listRuns } from './runs.js';

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
    if (!run || !existsSync(join(run.dir, CHECKPOINT))) return c.notFound();
    return c.json((await galleryOf(run)).gallery);
  });
  app.get('/runs/:name/gallery/:file', async (c) => {
    const run = findRun(root, c.req.param('name'));
    const index = Number(/^(\d+)\.png$/.exec(c.req.param('file'))?.[1] ?? NaN);
    if (!run || !existsSync(join(run.dir, CHECKPOINT))) return c.notFound();
    const { gallery, dataset } = await galleryOf(run);
    // only the images the gallery shows: the rest of the training data is not the dashboard's to hand out
    if (!gallery.prototypes.some((p) => p.images.includes(index))) return c.notFound();
    return c.body(new Uint8Array(await thumbnail(dataset, index)), 200, { 'content-type': 'image/png' });
  });
  app.onError((e, c) => c.text(e.message, 500));
  app.notFound((c) => c.text('not found', 404));
  return app;
}
