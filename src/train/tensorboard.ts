// TensorBoard event files, as TensorBoard reads them: TFRecord framing (the record's length as a little-endian
// uint64, the masked CRC32C of those 8 bytes, the record, its masked CRC32C) around Event protocol buffers
// (tensorflow/core/util/event.proto, summary.proto: scalars, histograms, PNG images). A file per writer, named as
// TensorBoard's writers name them (events.out.tfevents.<seconds>.<host>), appended event by event so that
// TensorBoard follows a run live; a resumed run writes a new file in the same directory and its curves go on.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import protobuf from 'protobufjs';

const root = protobuf.Root.fromJSON({
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              oneofs: { value: { oneof: ['simple_value', 'image', 'histo'] } },
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                image: { type: 'Image', id: 4 },
                histo: { type: 'HistogramProto', id: 5 },
              },
            },
            Image: {
              fields: {
                height: { type: 'int32', id: 1 },
                width: { type: 'int32', id: 2 },
                colorspace: { type: 'int32', id: 3 },
                encoded_image_string: { type: 'bytes', id: 4 },
              },
            },
          },
        },
        HistogramProto: {
          fields: {
            min: { type: 'double', id: 1 },
            max: { type: 'double', id: 2 },
            num: { type: 'double', id: 3 },
            sum: { type: 'double', id: 4 },
            sum_squares: { type: 'double', id: 5 },
            bucket_limit: { rule: 'repeated', type: 'double', id: 6, options: { packed: true } },
            bucket: { rule: 'repeated', type: 'double', id: 7, options: { packed: true } },
          },
        },
      },
    },
  },
});
const Event = root.lookupType('tensorboard.Event');

/** TFRecord's CRC: the CRC32C rotated right by 15 bits plus a constant. */
const masked = (data: Uint8Array) => {
  const crc = crc32c(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
};

/** One TFRecord: length, its CRC, the data, its CRC. */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(masked(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(masked(data), 0);
  return Buffer.concat([head, data, tail]);
}

/** A histogram of counts over the integers 0 .. counts.length - 1 (one bucket each). */
export interface Histogram {
  counts: number[];
}

export class EventWriter {
  readonly file: string;
  #fd: number | null;

  constructor(dir: string) {
    this.file = join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}`);
    this.#fd = openSync(this.file, 'a');
    this.#write({ wall_time: Date.now() / 1000, step: 0, file_version: 'brain.Event:2' });
  }

  /** tf.summary.scalar. */
  scalar(tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    this.#summary({ tag, simple_value: value }, step, wallTime);
  }

  /** tf.summary.histogram of integer values given by their counts (prototype usage: how often each was picked). */
  histogram(tag: string, h: Histogram, step: number, wallTime = Date.now() / 1000): void {
    let num = 0;
    let sum = 0;
    let squares = 0;
    let min = Infinity;
    let max = -Infinity;
    h.counts.forEach((c, i) => {
      if (!c) return;
      num += c;
      sum += c * i;
      squares += c * i * i;
      min = Math.min(min, i);
      max = Math.max(max, i);
    });
    const histo = {
      min: num ? min : 0,
      max: num ? max : 0,
      num,
      sum,
      sum_squares: squares,
      bucket_limit: h.counts.map((_, i) => i + 0.5),
      bucket: h.counts,
    };
    this.#summary({ tag, histo }, step, wallTime);
  }

  /** tf.summary.image of one encoded PNG. */
  image(
    tag: string,
    png: Uint8Array,
    size: { height: number; width: number; channels: number },
    step: number,
    wallTime = Date.now() / 1000,
  ): void {
    this.#summary(
      { tag, image: { height: size.height, width: size.width, colorspace: size.channels, encoded_image_string: png } },
      step,
      wallTime,
    );
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #summary(value: object, step: number, wallTime: number): void {
    this.#write({ wall_time: wallTime, step, summary: { value: [value] } });
  }

  #write(event: object): void {
    if (this.#fd === null) throw new Error(`${this.file}: the event writer is closed`);
    const record = tfRecord(Event.encode(Event.fromObject(event)).finish());
    writeSync(this.#fd, record);
  }
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: {
    tag: string;
    simpleValue?: number;
    histo?: { bucket: number[]; num: number };
    image?: { height: number; width: number; png: Uint8Array };
  }[];
}

/** An event file's events, every CRC checked: a reader for tests and the dashboard. */
export function readEvents(file: string): DecodedEvent[] {
  const buf = readFileSync(file);
  const out: DecodedEvent[] = [];
  for (let off = 0; off < buf.length; ) {
    if (off + 12 > buf.length) throw new Error(`${file}: a record header cut at byte ${off}`);
    const len = Number(buf.readBigUInt64LE(off));
    if (buf.readUInt32LE(off + 8) !== masked(buf.subarray(off, off + 8))) throw new Error(`${file}: bad length CRC at byte ${off}`);
    const data = buf.subarray(off + 12, off + 12 + len);
    if (data.length !== len || off + 16 + len > buf.length) throw new Error(`${file}: a record cut at byte ${off}`);
    if (buf.readUInt32LE(off + 12 + len) !== masked(data)) throw new Error(`${file}: bad data CRC at byte ${off}`);
    const e = Event.toObject(Event.decode(data), { longs: Number, defaults: false }) as any;
    out.push({
      wallTime: e.wall_time,
      step: e.step ?? 0,
      fileVersion: e.file_version,
      values: (e.summary?.value ?? []).map((v: any) => ({
        tag: v.tag,
        simpleValue: v.simple_value,
        histo: v.histo && { bucket: v.histo.bucket ?? [], num: v.histo.num ?? 0 },
        image: v.image && { height: v.image.height, width: v.image.width, png: v.image.encoded_image_string },
      })),
    });
    off += 16 + len;
  }
  return out;
}
