/**
 * Moving a huge parsed object from the parse worker to the agent's thread without one long stall: receiving
 * a 150k-key map in one message costs its whole deserialisation at once (hundreds of ms on a busy machine).
 * The worker detaches the entries of every large container into pieces; the agent puts them back a piece per
 * event-loop turn. The containers are named by path, never by a marker inside the data.
 */

/** Containers with more entries than this travel in pieces of this many entries. */
export const PIECE_ENTRIES = 1024;

/**
 * The detached entries of one container: `[key, value]` pairs of a mapping, or the items of a list, a piece
 * at a time. A piece travels as JSON text (copied, not deserialised, on arrival, then parsed a piece per
 * turn), or as it is when JSON would change it (NaN, ±Infinity, -0).
 */
export interface Detached {
  /** Which object of the file, and the key path inside it. */
  object: number;
  path: Array<string | number>;
  pieces: Array<string | unknown[]>;
}

/** Empties every container over PIECE_ENTRIES entries in place and returns their entries, outer before inner. */
export function detachLarge(objects: readonly unknown[]): Detached[] {
  const out: Detached[] = [];
  objects.forEach((root, object) => {
    const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: root, path: [] }];
    while (stack.length > 0) {
      const { value, path } = stack.pop() as { value: unknown; path: Array<string | number> };
      if (value === null || typeof value !== "object") continue;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) stack.push({ value: value[i], path: [...path, i] });
        if (value.length > PIECE_ENTRIES) out.push({ object, path, pieces: split(value.splice(0)) });
      } else {
        const record = value as Record<string, unknown>;
        const entries = Object.entries(record);
        for (const [k, v] of entries) stack.push({ value: v, path: [...path, k] });
        if (entries.length > PIECE_ENTRIES) {
          for (const [k] of entries) delete record[k];
          out.push({ object, path, pieces: split(entries) });
        }
      }
    }
  });
  // Pieces become text only now that every inner container is empty: its entries travel once, on their own.
  for (const d of out) d.pieces = d.pieces.map((piece) => toWire(piece as unknown[]));
  // Outer before inner: a path to an inner container runs through outer ones, which must be refilled first.
  return out;
}

/** Puts detached entries back, one piece per turn of the event loop (so timers and requests run between). */
export async function attachLarge(objects: readonly unknown[], detached: readonly Detached[]): Promise<void> {
  for (const d of detached) {
    let target: unknown = objects[d.object];
    for (const step of d.path) target = (target as Record<string | number, unknown>)[step];
    for (const sent of d.pieces) {
      const piece = (typeof sent === "string" ? JSON.parse(sent) : sent) as unknown[];
      if (Array.isArray(target)) for (const item of piece) target.push(item);
      else {
        const record = target as Record<string, unknown>;
        for (const [k, v] of piece as Array<[string, unknown]>) {
          // A "__proto__" key is data (JSON.parse and yaml make it an own property), never the prototype.
          if (k === "__proto__")
            Object.defineProperty(record, k, {
              value: v,
              writable: true,
              enumerable: true,
              configurable: true,
            });
          else record[k] = v;
        }
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

function split(items: unknown[]): unknown[][] {
  const pieces: unknown[][] = [];
  for (let i = 0; i < items.length; i += PIECE_ENTRIES) pieces.push(items.slice(i, i + PIECE_ENTRIES));
  return pieces;
}

function toWire(piece: unknown[]): string | unknown[] {
  let exact = true;
  const text = JSON.stringify(piece, (_key, v: unknown) => {
    if (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))) exact = false;
    return v;
  });
  return exact ? text : piece;
}
