import type { Request } from 'express';
import type { FormInput } from '../services/form';

/**
 * A numeric route parameter (`:id` unless named), or 0 when it is not a whole number of at most ten digits:
 * no record has id 0, so a malformed id answers 404 like a missing one.
 */
export function idParam(req: Request, name = 'id'): number {
  const raw = String(req.params[name] ?? '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
}

/** The parsed form or JSON body, empty when there is none. */
export const formBody = (req: Request): FormInput => (req.body ?? {}) as FormInput;
