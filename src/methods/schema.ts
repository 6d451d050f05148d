// The building blocks of configuration sections (zod), shared by each method's own section and by the trainer's
// configuration (src/train/config.ts), so that every key is described once, with its type, range and default.
import { z } from 'zod';

/** A list of numbers; a bare number is a one-element list. */
export const list = <T extends z.ZodType<number>>(item: T) => z.preprocess((v) => (typeof v === 'number' ? [v] : v), z.array(item).min(1));

/** A section: a mapping of known keys (an empty or missing one takes every default). */
export const section = <S extends z.ZodRawShape>(description: string, shape: S) =>
  z.preprocess((v) => v ?? {}, z.strictObject(shape)).describe(description);
