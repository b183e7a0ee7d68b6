/** A line diff in unified format (`diff -u`), for `berth diff`: small inputs (one object's YAML each side). */

/** Lines of a and b as an edit script: " " kept, "-" only in a, "+" only in b (longest common subsequence). */
function editScript(a: readonly string[], b: readonly string[]): Array<[" " | "-" | "+", string]> {
  const n = a.length;
  const m = b.length;
  // Past ~4M cells an LCS table costs too much memory: show the whole object replaced.
  if (n * m > 4_000_000)
    return [
      ...a.map((l): [" " | "-" | "+", string] => ["-", l]),
      ...b.map((l): [" " | "-" | "+", string] => ["+", l]),
    ];
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const next = lcs[i + 1] as Uint32Array;
    for (let j = m - 1; j >= 0; j--)
      row[j] =
        a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const out: Array<[" " | "-" | "+", string]> = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push([" ", a[i] as string]);
      i++;
      j++;
    } else if (((lcs[i + 1] as Uint32Array)[j] as number) >= ((lcs[i] as Uint32Array)[j + 1] as number)) {
      out.push(["-", a[i] as string]);
      i++;
    } else {
      out.push(["+", b[j] as string]);
      j++;
    }
  }
  for (; i < n; i++) out.push(["-", a[i] as string]);
  for (; j < m; j++) out.push(["+", b[j] as string]);
  return out;
}

/** `diff -u` of two texts with `context` lines around each change; "" when they are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  fromName: string,
  toName: string,
  context = 3,
): string {
  const a = before === "" ? [] : before.replace(/\n$/, "").split("\n");
  const b = after === "" ? [] : after.replace(/\n$/, "").split("\n");
  const script = editScript(a, b);
  if (script.every(([op]) => op === " ")) return "";
  const lines = [`--- ${fromName}`, `+++ ${toName}`];
  // Positions in a and b before each script line, to number the hunks.
  const at: Array<[number, number]> = [];
  let ai = 0;
  let bi = 0;
  for (const [op] of script) {
    at.push([ai, bi]);
    if (op !== "+") ai++;
    if (op !== "-") bi++;
  }
  let k = 0;
  while (k < script.length) {
    if ((script[k] as [string, string])[0] === " ") {
      k++;
      continue;
    }
    const start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within 2×context kept lines.
    for (;;) {
      while (end < script.length && (script[end] as [string, string])[0] !== " ") end++;
      let gap = end;
      while (gap < script.length && (script[gap] as [string, string])[0] === " ") gap++;
      if (gap < script.length && gap - end <= 2 * context) end = gap;
      else {
        end = Math.min(script.length, end + context);
        break;
      }
    }
    const hunk = script.slice(start, end);
    const [a0, b0] = at[start] as [number, number];
    const aLen = hunk.filter(([op]) => op !== "+").length;
    const bLen = hunk.filter(([op]) => op !== "-").length;
    lines.push(`@@ -${aLen === 0 ? a0 : a0 + 1},${aLen} +${bLen === 0 ? b0 : b0 + 1},${bLen} @@`);
    for (const [op, text] of hunk) lines.push(`${op}${text}`);
    k = end;
  }
  return `${lines.join("\n")}\n`;
}
