/** Serializes async work per key (a cache directory) within this process. */

const tails = new Map<string, Promise<unknown>>();

/** Runs `work` after every earlier call for the same key has settled; calls for other keys run freely. */
export async function serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve();
  // Run whether the previous holder succeeded or failed: its failure is its caller's to handle.
  const current = previous.then(work, work);
  const tail = current.then(
    () => undefined,
    () => undefined,
  );
  tails.set(key, tail);
  try {
    return await current;
  } finally {
    // Drop the entry once nothing queued behind us, so the map does not grow with every key ever used.
    if (tails.get(key) === tail) tails.delete(key);
  }
}
