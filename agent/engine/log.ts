/** Structured logs: one JSON object per line, or a readable line on a terminal. Never pass secret values. */

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

/** A logger bound to fixed fields. */
export interface Logger {
  log(level: Level, msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger writing to `write` (default stderr), JSON unless `human` is set. */
export function createLogger(
  options: { human?: boolean; level?: Level; write?: (line: string) => void } = {},
): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const min = ORDER[options.level ?? "info"];
  const make = (bound: Fields): Logger => ({
    log(level, msg, fields = {}) {
      if (ORDER[level] < min) return;
      const all = { ...bound, ...fields };
      if (options.human) {
        const extra = Object.entries(all)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        const time = new Date().toISOString().slice(11, 19);
        write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? `  ${extra}` : ""}\n`);
      } else {
        write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...all })}\n`);
      }
    },
    child: (fields) => make({ ...bound, ...fields }),
  });
  return make({});
}

/** A logger that drops everything (tests, --json commands). */
export const silentLogger: Logger = { log() {}, child: () => silentLogger };
