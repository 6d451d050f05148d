#!/usr/bin/env node
// Whether libjpeg(-turbo)'s headers are here (Debian/Ubuntu: libjpeg-dev), for binding.gyp: `--defines` prints
// SWAV_HAS_LIBJPEG and `--libs` -ljpeg when they are, nothing when not (sharp then decodes every image).
import { existsSync } from 'node:fs';

const dirs = ['/usr/include', '/usr/local/include'];
const found = dirs.some((d) => existsSync(`${d}/jpeglib.h`));
const out = { '--defines': found ? ['SWAV_HAS_LIBJPEG'] : [], '--libs': found ? ['-ljpeg'] : [] }[process.argv[2]];
console.log(out ? out.join(' ') : JSON.stringify({ found }));
