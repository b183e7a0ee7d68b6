/**
 * The file system isomorphic-git writes the cache through. Every file write goes to a temporary name and is
 * renamed into place, so a reader never sees half a pack index or ref, and a crash mid-fetch leaves no
 * truncated file that later reads would trip over.
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";

async function writeFileAtomically(
  path: string,
  data: string | Uint8Array,
  options?: Parameters<typeof fsp.writeFile>[2],
): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString("hex")}`;
  try {
    await fsp.writeFile(temporary, data, options);
    await fsp.rename(temporary, path);
  } catch (err) {
    await fsp.rm(temporary, { force: true });
    // Rethrown as is: isomorphic-git creates the missing directory on ENOENT and writes again.
    throw err;
  }
}

/** A promise-based `fs` for isomorphic-git with atomic `writeFile`. */
export const atomicFs = {
  promises: {
    readFile: fsp.readFile,
    writeFile: writeFileAtomically,
    mkdir: fsp.mkdir,
    rmdir: fsp.rmdir,
    rm: fsp.rm,
    unlink: fsp.unlink,
    stat: fsp.stat,
    lstat: fsp.lstat,
    readdir: fsp.readdir,
    readlink: fsp.readlink,
    symlink: fsp.symlink,
  },
};
