// The command line's one progress renderer: a line redrawn in place on a terminal, printed now and then in logs;
// the download and image-loop bar draws through it.
import type { DownloadEvent } from '../hub/download.js';

/** One line of progress on `stream`: redrawn in place on a terminal; elsewhere printed at milestones, or every `everyMs`. */
export class ProgressLine {
  #drawn = false;
  #last = 0;
  constructor(
    readonly stream: NodeJS.WriteStream,
    readonly everyMs = 30_000,
  ) {}

  /** A line of its own, below the progress line. */
  log(line: string): void {
    this.end();
    this.stream.write(`${line}\n`);
  }

  update(line: string, milestone = false): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      this.#drawn = true;
    } else if (milestone || Date.now() - this.#last > this.everyMs) {
      this.#last = Date.now();
      this.stream.write(`${line}\n`);
    }
  }

  /** Leaves the line drawn so far as it is. */
  end(): void {
    if (this.#drawn) this.stream.write('\n');
    this.#drawn = false;
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** A bar for downloads and long loops: off a terminal, one line per tenth done. */
export function progressBar(stream: NodeJS.WriteStream): (e: DownloadEvent) => void {
  const out = new ProgressLine(stream, Number.POSITIVE_INFINITY);
  let lastTenth = -1;
  return (e) => {
    if (e.status === 'initiate') return out.log(`downloading ${e.url}`);
    if (e.status === 'done') return out.log(`saved ${e.path} (${mb(e.bytes)})`);
    const pct = e.progress ?? 0;
    const filled = Math.round((pct / 100) * 30);
    const amount = e.name === 'images' ? `${e.loaded}/${e.total} images` : `${mb(e.loaded)}${e.total ? ` / ${mb(e.total)}` : ''}`;
    const tenth = Math.floor(pct / 10);
    out.update(`[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${pct.toFixed(0).padStart(3)}% ${amount}`, tenth !== lastTenth);
    lastTenth = tenth;
  };
}
