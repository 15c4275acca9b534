/** Errors that carry a message for the user and the HTTP status that says what kind of problem it is. */
export class CrmError extends Error {
  /** `details` are extra members of the JSON answer (e.g. the problems a template check found). */
  constructor(readonly status: number, message: string, readonly fieldErrors: Record<string, string> = {}, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'CrmError';
  }
}

/** For records the user may not see as much as for records that do not exist: never confirm existence. */
export const notFound = (what = 'Page') => new CrmError(404, `${what} not found.`);
export const forbidden = (message = 'You are not allowed to do this.') => new CrmError(403, message);
export const invalid = (message: string, fieldErrors: Record<string, string> = {}) => new CrmError(422, message, fieldErrors);
/**
 * A refused form's input as it is shown again. After a conflict (409) it carries the record's current lock version
 * (`current`: the record as this request read it): the user reviews their input and saves again, and that save
 * wins. With the version they had loaded, every further save would meet the same conflict.
 */
export function inputShownAgain<T extends Record<string, unknown>>(input: T, err: CrmError, current: { lock_version: number } | null | undefined): T {
  return err.status === 409 && current ? { ...input, lock_version: String(current.lock_version) } : input;
}

/** Someone else saved the record since this form was loaded. */
export const staleRecord = (what: string) =>
  new CrmError(409, `${what} was changed by someone else while you were editing. Your input is kept below; review it and save again.`);
