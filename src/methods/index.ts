// The training methods, by the name the configuration's `method` key gives. The trainer creates one from here and
// knows nothing else of it; each method's module also defines its configuration section.
import { createSwAV, type SwAVSection } from './swav.js';
import { createDeepClusterV2, type DeepClusterV2Section } from './deepclusterv2.js';
import { createSeLaV2, type SeLaV2Section } from './selav2.js';
import type { MethodContext, TrainingMethod } from './method.js';

export type { MethodBatch, MethodContext, IterationResult, TrainingMethod } from './method.js';
export { AUTOCAST_DTYPE, type Amp } from './common.js';

/** A method's name with its section, as a configuration holds them. */
export type MethodChoice =
  | { method: 'swav'; swav: SwAVSection }
  | { method: 'deepclusterv2'; deepclusterv2: DeepClusterV2Section }
  | { method: 'selav2'; selav2: SeLaV2Section };

export function createMethod(c: MethodChoice, ctx: MethodContext): TrainingMethod {
  switch (c.method) {
    case 'swav':
      return createSwAV(c.swav, ctx);
    case 'deepclusterv2':
      return createDeepClusterV2(c.deepclusterv2, ctx);
    case 'selav2':
      return createSeLaV2(c.selav2, ctx);
  }
}
