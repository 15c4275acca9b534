/**
 * Entry of `npm run bench` (compiled to dist/bench/run.js). Templates are cached as in production: the
 * setting is read when the plugin's modules load, so it is set here before anything else is imported.
 */
process.env.NODE_ENV = process.env.NODE_ENV || 'production';

import('./harness.js')
  .then((harness) => harness.main(process.argv.slice(2)))
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
