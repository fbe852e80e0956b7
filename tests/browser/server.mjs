// What the browser tests share: a free port, `hyrank-serve` on the fixture index started and
// waited for, and headless Chromium. The environment is scripts/browser-test.sh's:
//   HYRANK_SERVE_BIN, HYRANK_INDEX_DIR, HYRANK_MODEL_DIR, CHROMIUM (default /usr/bin/chromium).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

const required = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through scripts/browser-test.sh`);
  return value;
};

/// A port free on 127.0.0.1 when asked.
export const freePort = () => new Promise((resolve, reject) => {
  const probe = createServer();
  probe.listen(0, "127.0.0.1", () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
  probe.on("error", reject);
});

/// Starts hyrank-serve on a free port with `args` beside the index, model and bind, and waits
/// until /readyz answers (60 s at most). Returns the process and its base URL.
export async function startServer(args = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = "";
  const server = spawn(required("HYRANK_SERVE_BIN"), [
    "--index-dir", required("HYRANK_INDEX_DIR"), "--model-dir", required("HYRANK_MODEL_DIR"),
    "--bind", `127.0.0.1:${port}`, "--device", "cpu", "--watch-secs", "0", ...args,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => { log += d; });
  server.stderr.on("data", (d) => { log += d; });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`hyrank-serve exited ${server.exitCode}:\n${log}`);
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`hyrank-serve not ready within 60 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { server, base };
}

/// Headless Chromium.
export const launchBrowser = () =>
  chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
