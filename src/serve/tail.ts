// metrics.jsonl as it grows: the complete lines appended since the last read (a line still being written waits for
// its newline); polled, since fs.watch misses appends on some filesystems (NFS, overlay in containers).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

export class JsonlTail {
  private offset = 0;

  constructor(private readonly file: string) {}

  /** The records appended since the last call; `reset` when the file shrank (a run started over in that directory). */
  read(): { records: unknown[]; reset: boolean } {
    const size = existsSync(this.file) ? statSync(this.file).size : 0;
    const reset = size < this.offset;
    if (reset) this.offset = 0;
    if (size === this.offset) return { records: [], reset };
    return {
      records: this.completeLines(size)
        .split('\n')
        .filter((l) => l.trim())
        .flatMap(parse),
      reset,
    };
  }

  /** The bytes up to the last newline, decoded; the offset moves past them only (bytes, so no UTF-8 is cut). */
  private completeLines(size: number): string {
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    const end = buf.lastIndexOf(10) + 1;
    this.offset += end;
    return buf.subarray(0, end).toString('utf8');
  }
}

/** A line that is not JSON (a crash mid-write) is skipped rather than ending the stream. */
function parse(line: string): unknown[] {
  try {
    return [JSON.parse(line)];
  } catch {
    return [];
  }
}
