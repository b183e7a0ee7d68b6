/** Async work per key within this process: serialized (a cache directory), or remembered while it succeeds. */

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

/**
 * The promise `make()` gave for `key` in `memo`, made once; a failed one is forgotten, so the next call tries
 * afresh rather than report a stale failure.
 */
export function rememberedUntilFailure<K, T>(
  memo: Map<K, Promise<T>>,
  key: K,
  make: () => Promise<T>,
): Promise<T> {
  let pending = memo.get(key);
  if (!pending) {
    pending = make();
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return pending;
}
