/**
 * The engine's event bus: reconcile progress fanned out to the log, metrics and the HTTP event stream. Bus is
 * the one wake-up primitive too: the run loop sleeps on its own Bus until a trigger, and the event stream waits
 * on the engine's until the next event, each with a timeout.
 */
import type { EngineEvent } from "./ports.ts";

/** A synchronous, typed publish/subscribe bus; a throwing listener never breaks the publisher or other listeners. */
export class Bus<T> {
  private readonly listeners = new Set<(value: T) => void>();
  /** Callers of next(), woken by the next emit (not counted against maxListeners: they leave at once). */
  private readonly waiters = new Set<() => void>();

  constructor(private readonly maxListeners = Number.POSITIVE_INFINITY) {}

  /** Publishes one value to every current listener, then wakes every caller of next(). */
  emit(value: T): void {
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch {
        // A subscriber's failure (a closed stream) is its own business.
      }
    }
    for (const wake of [...this.waiters]) wake();
  }

  /** Adds a listener; returns the function that removes it, or undefined when the bus is full. */
  subscribe(listener: (value: T) => void): (() => void) | undefined {
    if (this.listeners.size >= this.maxListeners) return undefined;
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves at the next emit, after `ms`, or when `signal` aborts, whichever comes first. */
  next(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** How many listeners are subscribed. */
  get size(): number {
    return this.listeners.size;
  }
}

/** An engine event with the time it was published and a sequence number (for SSE ids). */
export interface PublishedEvent {
  seq: number;
  at: string;
  event: EngineEvent;
}

/** Listeners beyond this are refused, so a flood of event-stream clients cannot exhaust memory. */
export const MAX_SUBSCRIBERS = 256;

/** The engine's events, each stamped with its time and sequence number. */
export class EventBus {
  private readonly bus = new Bus<PublishedEvent>(MAX_SUBSCRIBERS);
  private seq = 0;

  /** Publishes one event to every current subscriber. */
  emit(event: EngineEvent): void {
    this.bus.emit({ seq: ++this.seq, at: new Date().toISOString(), event });
  }

  subscribe(listener: (e: PublishedEvent) => void): (() => void) | undefined {
    return this.bus.subscribe(listener);
  }

  next(ms: number, signal?: AbortSignal): Promise<void> {
    return this.bus.next(ms, signal);
  }

  get size(): number {
    return this.bus.size;
  }
}
