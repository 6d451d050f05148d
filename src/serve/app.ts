// The dashboard's routes on hono. Every route looks its target up by name (a run in listRuns, an asset in a fixed
// table), so a request path never becomes a filesystem path: traversal attempts, in any encoding, are plain 404s.
import { Hono } from 'hono';
import { asset } from './assets.js';
import { metricsStream } from './events.js';
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
  app.notFound((c) => c.text('not found', 404));
  return app;
}
