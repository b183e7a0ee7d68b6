/**
 * Bounded messages: an entry's message is stored, logged and served, so one failure over hundreds of objects
 * (an API server restarting mid-plan) must not make it tens of kilobytes. The full detail stays per object.
 */

/** The most UTF-8 bytes of a stored, logged or served message. */
export const MESSAGE_LIMIT = 4096;

/** One object's (or file's) part of a message. */
export interface MessagePart {
  subject: string;
  message: string;
}

/** At most this many bytes of one part, so a single long error cannot crowd out the others. */
const PART_LIMIT = 512;
/** Room kept for the "… and N more" tail. */
const TAIL_ROOM = 320;
const encoder = new TextEncoder();

/** UTF-8 length of a string. */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** A message cut to `limit` bytes (on a character boundary), saying how many bytes were cut. */
export function capMessage(text: string, limit = MESSAGE_LIMIT): string {
  const total = byteLength(text);
  if (total <= limit) return text;
  const head = headOf(text, Math.max(0, limit - 40));
  return `${head}… (${total - byteLength(head)} more bytes)`;
}

/**
 * Joins `subject: message` parts with "; " after an optional prefix, within `limit` bytes; the parts that do not
 * fit are counted with their most common causes: `… and 583 more objects: connection refused`.
 */
export function joinMessages(
  parts: readonly MessagePart[],
  options: { prefix?: string; noun?: string; limit?: number } = {},
): string {
  const limit = options.limit ?? MESSAGE_LIMIT;
  const noun = options.noun ?? "objects";
  let out = options.prefix ?? "";
  let used = byteLength(out);
  let shown = 0;
  for (const part of parts) {
    const text = capMessage(`${part.subject}: ${part.message}`, PART_LIMIT);
    const size = byteLength(text) + (shown > 0 ? 2 : 0);
    // The last part needs no room for a tail.
    const room = shown === parts.length - 1 ? limit : limit - TAIL_ROOM;
    if (used + size > room) break;
    out += shown > 0 ? `; ${text}` : text;
    used += size;
    shown++;
  }
  const rest = parts.slice(shown);
  if (rest.length === 0) return capMessage(out, limit);
  const tail = `${shown > 0 ? "; " : ""}… and ${rest.length} more ${noun}: ${causes(rest)}`;
  return capMessage(out + tail, limit);
}

/** The causes of the cut parts, most common first: the last `: `-separated segment is usually the root cause. */
function causes(parts: readonly MessagePart[]): string {
  const counts = new Map<string, number>();
  for (const p of parts) {
    const cause = headOf(p.message.slice(p.message.lastIndexOf(": ") + 1).trim() || p.message, 80);
    counts.set(cause, (counts.get(cause) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  if (ranked.length === 1) return ranked[0]?.[0] ?? "";
  const top = ranked.slice(0, 3).map(([cause, n]) => `${n} × ${cause}`);
  return ranked.length > 3 ? `${top.join(", ")}, …` : top.join(", ");
}

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes without splitting a character. */
function headOf(text: string, bytes: number): string {
  const { read } = encoder.encodeInto(text, new Uint8Array(bytes));
  return text.slice(0, read);
}
