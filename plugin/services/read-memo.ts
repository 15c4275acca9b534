import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Answers loaded once per reading request: one page resolves the viewer's scope for several kinds of records
 * (a dashboard for four), and each resolution reads the same partner links and role visibility levels.
 * Requests that write, and code outside a request, read afresh every time. The reference host memoizes its own
 * reads the same way (host/repository.ts); the plugin keeps its own because it sees the host only through the
 * host API and must work on hosts that memoize nothing.
 */
const memo = new AsyncLocalStorage<Map<string, Promise<unknown>>>();

/** Runs `handle` with its own memo when the request only reads (GET, HEAD). */
export function withReadMemo<T>(method: string, handle: () => Promise<T>): Promise<T> {
  return method === 'GET' || method === 'HEAD' ? memo.run(new Map(), handle) : handle();
}

/** `load()`, or its earlier answer in this reading request. The answer is shared: do not change it. */
export function readOnce<T>(key: string, load: () => Promise<T>): Promise<T> {
  const store = memo.getStore();
  if (!store) return load();
  let value = store.get(key) as Promise<T> | undefined;
  if (!value) {
    value = load();
    store.set(key, value);
    value.catch(() => store.delete(key));
  }
  return value;
}
