import type { AlarmEvent } from './model.ts';

/** Where alarm events come from: the alarm engine (its `onEvent`), or a test's emitter. */
export interface AlarmEventSource {
  /** Calls `listener` for every event as it happens; returns an unsubscribe function. */
  onEvent(listener: (e: AlarmEvent) => void): () => void;
}
