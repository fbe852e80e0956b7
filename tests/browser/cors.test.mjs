// CORS in a real browser: a page on another origin calls hyrank-serve's API the way an app's
// front end would (a POST with a JSON body and a key, which the browser preflights). The
// server lists one origin (`--cors-origins`): a page there reads the answer; a page on an
// origin not listed cannot; the server's own /ui (same origin) keeps working. Run by
// scripts/browser-test.sh (server.mjs says which environment).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { freePort, launchBrowser, startServer } from "./server.mjs";

const KEY = "search-key-0123456789";
let server, browser, api, listed, unlisted;
const pages = [];

/// A page server on its own port: one empty HTML page, the origin a front end would run on.
async function pageOrigin() {
  const port = await freePort();
  const page = createHttpServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<!doctype html><title>app</title>");
  });
  await new Promise((resolve) => page.listen(port, "127.0.0.1", resolve));
  pages.push(page);
  return `http://127.0.0.1:${port}`;
}

before(async () => {
  listed = await pageOrigin();
  unlisted = await pageOrigin();
  ({ server, base: api } = await startServer(["--cors-origins", listed, "--search-key", KEY]));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill();
  for (const page of pages) page.close();
});

/// What a page on `origin` gets from `fetch`ing a search: the status and the hit count, or the
/// error the browser raised.
async function searchFrom(origin, key = KEY) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(origin);
  const outcome = await tab.evaluate(async ({ api, key }) => {
    try {
      const response = await fetch(`${api}/v1/search`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: "ultralight tent" }),
      });
      const body = await response.json();
      return { status: response.status, hits: body.hits?.length, code: body.error?.code, id: response.headers.get("x-request-id") };
    } catch (e) {
      return { error: String(e) };
    }
  }, { api, key });
  await context.close();
  return outcome;
}

test("a page on the listed origin calls the API with its key and reads the answer", async () => {
  const outcome = await searchFrom(listed);
  assert.equal(outcome.status, 200, JSON.stringify(outcome));
  assert.equal(outcome.hits, 10);
  assert.ok(outcome.id, "the request id is exposed to the page");
});

test("an error reaches the listed origin's page too, so it can say why", async () => {
  const outcome = await searchFrom(listed, "wrong-key-0123456789");
  assert.deepEqual([outcome.status, outcome.code], [403, "forbidden"], JSON.stringify(outcome));
});

test("a page on an origin not listed cannot read the API", async () => {
  const outcome = await searchFrom(unlisted);
  assert.match(outcome.error ?? "", /TypeError|Failed to fetch/, JSON.stringify(outcome));
});

test("the server's own page still works with CORS on", async () => {
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(`${api}/ui`);
  const status = await tab.evaluate(async ({ key }) => (await fetch("/v1/search", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: "tent" }),
  })).status, { key: KEY });
  await context.close();
  assert.equal(status, 200);
});
