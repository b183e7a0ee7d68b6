/** The engine's event bus: reconcile progress fanned out to the log, metrics and the HTTP event stream. */
import type { EngineEvent } from "./ports.ts";

/** An engine event with the time it was published and a sequence number (for SSE ids). */
export interface PublishedEvent {
  seq: number;
  at: string;
  event: EngineEvent;
}

/** Listeners beyond this are refused, so a flood of event-stream clients cannot exhaust memory. */
export const MAX_SUBSCRIBERS = 256;

/** A synchronous publish/subscribe bus; a throwing listener never breaks the engine or other listeners. */
export class EventBus {
  private readonly listeners = new Set<(e: PublishedEvent) => void>();
  private seq = 0;

  /** Publishes one event to every current subscriber. */
  emit(event: EngineEvent): void {
    const published: PublishedEvent = { seq: ++this.seq, at: new Date().toISOString(), event };
    for (const listener of this.listeners) {
      try {
        listener(published);
      } catch {
        // A subscriber's failure (a closed stream) is its own business.
      }
    }
  }

  /** Adds a listener; returns the function that removes it, or undefined when the bus is full. */
  subscribe(listener: (e: PublishedEvent) => void): (() => void) | undefined {
    if (this.listeners.size >= MAX_SUBSCRIBERS) return undefined;
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** How many listeners are subscribed. */
  get size(): number {
    return this.listeners.size;
  }
}
