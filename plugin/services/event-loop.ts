/**
 * Lets other requests run between the slices of long synchronous work, such as pricing and shaping a quote of
 * thousands of lines. On SQLite a query resolves without a trip through the event loop, so a chain of awaits
 * alone never lets anyone else in; this does (setImmediate: after pending I/O, before timers).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Lines above which a quote's handling is sliced (a few hundred lines take a few milliseconds per step). */
export const SLICE_LINES = 500;
