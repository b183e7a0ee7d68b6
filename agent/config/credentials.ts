/** Reads Git credentials from the file or environment variable berth.yaml names, at the moment they are needed. */
import { readFileSync } from "node:fs";
import process from "node:process";
import { BerthError } from "../object/errors.ts";
import type { GitAuthConfig } from "./config.ts";

/** User name sent with a token, as GitHub, GitLab and Gitea accept it. */
export const TOKEN_USERNAME = "x-access-token";

/** Basic-auth credentials for Git over HTTP. */
export interface GitCredentials {
  username: string;
  password: string;
}

/** Credentials for `auth`, read now; errors name the file or variable, never the secret. */
export function resolveGitCredentials(
  auth: GitAuthConfig | undefined,
  env: Record<string, string | undefined> = process.env,
): GitCredentials | undefined {
  if (auth === undefined) return undefined;
  if (auth.tokenFile !== undefined)
    return { username: TOKEN_USERNAME, password: readSecretFile(auth.tokenFile, "token") };
  if (auth.tokenEnv !== undefined)
    return { username: TOKEN_USERNAME, password: readSecretEnv(auth.tokenEnv, "token", env) };
  const username = auth.username ?? "";
  if (auth.passwordFile !== undefined)
    return { username, password: readSecretFile(auth.passwordFile, "password") };
  if (auth.passwordEnv !== undefined)
    return { username, password: readSecretEnv(auth.passwordEnv, "password", env) };
  return undefined;
}

/** The trimmed content of a secret file; errors name the file and never include its content. */
export function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code ?? "unreadable";
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code;
    throw new BerthError(`cannot read ${what} file: ${why}`, { subject: path, reason: "FetchFailed" });
  }
  const secret = text.trim();
  if (secret === "") throw new BerthError(`${what} file is empty`, { subject: path, reason: "FetchFailed" });
  return secret;
}

/** The value of a secret environment variable; errors name the variable and never include a value. */
export function readSecretEnv(name: string, what: string, env: Record<string, string | undefined>): string {
  const value = env[name];
  if (value === undefined) {
    throw new BerthError(`${what} environment variable is not set`, {
      subject: `$${name}`,
      reason: "FetchFailed",
    });
  }
  const secret = value.trim();
  if (secret === "") {
    throw new BerthError(`${what} environment variable is empty`, {
      subject: `$${name}`,
      reason: "FetchFailed",
    });
  }
  return secret;
}
