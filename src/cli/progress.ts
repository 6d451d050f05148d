// A one-line progress bar for downloads and long loops: redrawn on a terminal, one line per tenth elsewhere.
import type { DownloadEvent } from '../hub/download.js';

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function progressBar(stream: NodeJS.WriteStream): (e: DownloadEvent) => void {
  let lastTenth = -1;
  return (e) => {
    if (e.status === 'initiate') return void stream.write(`downloading ${e.url}\n`);
    if (e.status === 'done') return void stream.write(`${stream.isTTY ? '\n' : ''}saved ${e.path} (${mb(e.bytes)})\n`);
    const pct = e.progress ?? 0;
    const filled = Math.round((pct / 100) * 30);
    const amount = e.name === 'images' ? `${e.loaded}/${e.total} images` : `${mb(e.loaded)}${e.total ? ` / ${mb(e.total)}` : ''}`;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${pct.toFixed(0).padStart(3)}% ${amount}`;
    if (stream.isTTY) {
      stream.write(`\r${line}`);
    } else if (Math.floor(pct / 10) !== lastTenth) {
      lastTenth = Math.floor(pct / 10);
      stream.write(`${line}\n`);
    }
  };
}
