/**
 * A child process of the benchmark: renders a quote document on its own main thread and reports how long each
 * render took. The documents section compares that with the worker-thread route; doing it here, not in the
 * server's process, keeps the comparison's memory out of the server's peak RSS.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { renderDocx } from '../plugin/services/documents/render';
import type { TokenData } from '../plugin/services/documents/token-data';

process.once('message', (msg: { templatePath: string; data: TokenData; runs: number }) => {
  const template = fs.readFileSync(msg.templatePath);
  const times: number[] = [];
  for (let i = 0; i < msg.runs; i++) {
    const started = performance.now();
    renderDocx(template, msg.data);
    times.push(performance.now() - started);
  }
  process.send!({ times }, () => process.exit(0));
});
