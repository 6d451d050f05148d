// The dashboard's HTTP server: listening on host:port, with a port in use said in one line that names --port.
import { createAdaptorServer } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { dashboard } from './app.js';

export interface Listening {
  server: Server;
  url: string;
}

export function listen(root: string, port: number, host: string): Promise<Listening> {
  const server = createAdaptorServer({ fetch: dashboard(root).fetch }) as Server;
  return new Promise((done, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(
        new Error(
          e.code === 'EADDRINUSE'
            ? `serve: port ${port} on ${host} is in use: choose another with --port`
            : `serve: cannot listen on ${host}:${port}: ${e.message}`,
        ),
      ),
    );
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      done({ server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/` });
    });
  });
}
