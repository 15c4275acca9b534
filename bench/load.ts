/**
 * The load generator, in a process of its own: the harness forks it for each measurement so the server's
 * process holds only the server (its peak RSS is the one the benchmark reports).
 */
import autocannon from 'autocannon';

export interface LoadRequest {
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
}

export interface LoadResult {
  latencies: number[];
  statuses: Record<string, number>;
  requests: number;
  duration: number;
  failures: number;
}

process.once('message', (request: LoadRequest) => {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const instance = autocannon({ url: request.url, connections: request.connections, duration: request.duration, timeout: 120, headers: request.headers });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    latencies.push(responseTime);
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
  });
  instance.then((result) => {
    const reply: LoadResult = {
      latencies, statuses, requests: result.requests.total, duration: result.duration, failures: result.non2xx + result.errors + result.timeouts,
    };
    process.send?.(reply, () => process.exit(0));
  }, (err: unknown) => {
    process.stderr.write(`load generator failed: ${String(err)}\n`);
    process.exit(1);
  });
});
