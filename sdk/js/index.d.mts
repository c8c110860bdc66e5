// Types for the ESM entry (index.mjs): the same declarations as the CommonJS entry.
export * from './index.js';
import * as sdk from './index.js';
export default sdk;
