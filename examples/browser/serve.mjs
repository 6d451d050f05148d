#!/usr/bin/env node
// The browser example's static server, on 127.0.0.1 only: the page (this folder), onnxruntime-web's ES module and
// wasm files under /ort/ (from node_modules: nothing comes from a CDN) and an export directory (`swav export
// --onnx --out DIR/model.onnx --gallery DIR`) under /export/. A request path is resolved inside one of these three
// roots or it is a 404: no path escapes them.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { dir: { type: 'string' }, port: { type: 'string', default: '8000' } } });
const port = Number(values.port);
if (!values.dir || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node examples/browser/serve.mjs --dir EXPORT_DIR [--port 8000]   (--port 0: a free one)');
  process.exit(2);
}

// onnxruntime-web's `require` entry point lies in its dist/ folder, beside the ES modules and the wasm files
const roots = [
  ['/ort/', dirname(createRequire(import.meta.url).resolve('onnxruntime-web'))],
  ['/export/', resolve(values.dir)],
  ['/', dirname(fileURLToPath(import.meta.url))],
];

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.css': 'text/css; charset=utf-8',
};

/** The path a URL path names inside its root, or null (reading a folder or a missing file fails later: a 404 too). */
function fileOf(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (path === '/') path = '/index.html';
  const [prefix, root] = roots.find(([p]) => path.startsWith(p));
  const file = resolve(root, `.${sep}${path.slice(prefix.length)}`);
  return file.startsWith(root + sep) ? file : null;
}

const server = createServer(async (req, res) => {
  const file = req.method === 'GET' ? fileOf(new URL(req.url, 'http://localhost').pathname) : null;
  const body = file && (await readFile(file).catch(() => null));
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length }).end(body);
});
server.once('error', (e) => {
  console.error(e.code === 'EADDRINUSE' ? `port ${port} is in use: choose another with --port` : e.message);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`serving ${values.dir} at http://127.0.0.1:${server.address().port}/`));
