/**
 * A task's title as text. Other clients (or a server) may store anything in it: an object
 * given to a framework as a child would throw (React unmounts the whole panel) or be
 * taken for slots (Vue).
 */
export const shown = (title: unknown): string =>
  title === undefined || title === null ? '(none)' : typeof title === 'string' ? title : JSON.stringify(title)
