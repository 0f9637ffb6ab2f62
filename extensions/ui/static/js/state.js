// What every module shares: the open thread and the lists the selects are filled from.
export const state = {
  thread: null,        // the open thread (API object) or null for a new, unsaved chat
  draft: null,         // settings chosen before the first message of a new chat
  models: [],          // downloaded models
  assistants: [],
  streaming: null,     // AbortController of the reply being streamed
};

const listeners = new Map();
export function on(name, fn) { (listeners.get(name) || listeners.set(name, []).get(name)).push(fn); }
export function emit(name, data) { for (const fn of listeners.get(name) || []) fn(data); }
