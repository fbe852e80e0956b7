// The analyst page in a real browser: headless Chromium (Debian's `chromium`, driven by
// playwright-core) against `hyrank-serve` on the fixture index. Run by scripts/test.sh, which
// builds the server and the index and sets:
//   HYRANK_SERVE_BIN   the hyrank-serve binary
//   HYRANK_INDEX_DIR   an index of fixtures/catalog.jsonl + fixtures/interactions.csv
//   HYRANK_MODEL_DIR   the model folder
//   HYRANK_ARTIFACTS   where screenshots go (default tests/browser/artifacts)
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { launchBrowser, startServer } from "./server.mjs";

const artifacts = process.env.HYRANK_ARTIFACTS || new URL("./artifacts", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

let server, browser, base;

before(async () => {
  ({ server, base } = await startServer());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill();
});

async function page(path) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab = await context.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(e.message));
  tab.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await tab.goto(base + path);
  return { tab, errors };
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

test("a search renders every hit with a bar per component that adds up to its final score", async () => {
  const { tab, errors } = await page("/ui");
  await tab.fill("#search-form input[name=query]", "ultralight backpacking tent");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForSelector("#results .hit");
  const hits = await tab.$$eval("#results .hit", (items) => items.map((item) => ({
    id: item.dataset.id,
    title: item.querySelector(".title").textContent,
    final: Number(item.querySelector(".final-score").textContent),
    parts: [...item.querySelectorAll(".bar-segment")].map((s) => ({ part: s.dataset.part, value: Number(s.dataset.value) })),
  })));
  assert.equal(hits.length, 10);
  assert.match(hits[0].title, /tent/i, "a tent ranks first for a tent query");
  assert.ok(hits.slice(0, 3).every((h) => h.id.startsWith("TNT-")), JSON.stringify(hits.slice(0, 3)));
  for (const hit of hits) {
    assert.ok(hit.parts.some((p) => p.part === "bm25") || hit.parts.some((p) => p.part === "dense"), hit.id);
    assert.ok(Math.abs(sum(hit.parts.map((p) => p.value)) - hit.final) < 1e-3, `${hit.id}: parts do not add up to ${hit.final}`);
  }
  const finals = hits.map((h) => h.final);
  assert.deepEqual(finals, [...finals].sort((a, b) => b - a), "best first");
  // The query's words marked in the first hit's title and text, as text: a mark holds a word
  // of the query (stemmed as BM25 reads it), and no markup leaks into the page.
  const marks = await tab.$$eval("#results .hit:first-child mark", (m) => m.map((x) => x.textContent.toLowerCase()));
  assert.ok(marks.length > 0 && marks.every((m) => /^(ultralight|backpacking|tents?)$/.test(m)), JSON.stringify(marks));

  // The BM25 tree, on demand.
  await tab.click("#results .hit:first-child button.explain");
  await tab.waitForSelector("#results .hit:first-child .tree");
  const tree = await tab.textContent("#results .hit:first-child .tree");
  assert.match(tree, /idf/, "the BM25 explanation tree is shown");
  await tab.screenshot({ path: `${artifacts}/ui-search.png`, fullPage: true });

  // Words of the items' texts: each hit whose text holds them shows its best fragment.
  await tab.fill("#search-form input[name=query]", "taped seams");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForSelector("#results .snippet");
  const snippets = await tab.$$eval("#results .snippet", (s) => s.map((x) => ({ text: x.textContent, marks: [...x.querySelectorAll("mark")].map((m) => m.textContent) })));
  assert.ok(snippets.length > 0, "no snippet");
  for (const s of snippets) {
    assert.ok(s.marks.length > 0 && s.marks.every((m) => /^(taped|seams)$/i.test(m)) && !s.text.includes("<em>"), JSON.stringify(s));
  }
  assert.deepEqual(errors, []);
});

test("the controls change the request: RRF fusion and bm25-only mode", async () => {
  const { tab, errors } = await page("/ui?tab=search&query=camp+stove&fusion=rrf");
  await tab.waitForSelector("#results .hit");
  const title = await tab.getAttribute("#results .hit:first-child .bar", "title");
  assert.match(title, /\(rrf\)/);
  await tab.selectOption("#config-main select[name=mode]", "bm25");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForFunction(() => [...document.querySelectorAll("#results .bar-segment")].every((s) => s.dataset.part === "bm25"));
  // The address follows the form, so that copying it shares this view: opened again, it
  // shows the same hits.
  const shared = new URL(tab.url());
  assert.equal(shared.searchParams.get("mode"), "bm25");
  assert.equal(shared.searchParams.get("fusion"), "rrf");
  assert.equal(shared.searchParams.get("query"), "camp stove");
  const ids = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  const again = await page(shared.pathname + shared.search);
  await again.tab.waitForSelector("#results .hit");
  assert.deepEqual(await again.tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id)), ids);
  assert.deepEqual(errors, []);
  assert.deepEqual(again.errors, []);
});

test("every fusion the list offers reaches the request, and one it does not keeps the default", async () => {
  for (const fusion of ["linear_floor", "dbsf"]) {
    const { tab, errors } = await page(`/ui?tab=search&query=camp+stove&fusion=${fusion}`);
    await tab.waitForSelector("#results .hit");
    assert.match(await tab.getAttribute("#results .hit:first-child .bar", "title"), new RegExp(`\\(${fusion}\\)`));
    assert.deepEqual(errors, []);
  }
  const { tab, errors } = await page("/ui?tab=search&query=camp+stove&fusion=linear-floor&mode=hybird&k=ten&x%5D%22=1");
  await tab.waitForSelector("#results .hit");
  assert.match(await tab.getAttribute("#results .hit:first-child .bar", "title"), /\(linear\)/);
  assert.equal(await tab.inputValue("#config-main select[name=mode]"), "hybrid");
  assert.equal(await tab.inputValue("#config-main input[name=k]"), "10");
  assert.equal(await tab.locator("#results .hit").count(), 10);
  assert.deepEqual(errors, []);
});

test("two configurations side by side, with each hit's move", async () => {
  const { tab, errors } = await page("/ui?tab=compare&query=coffee+grinder&a.fusion=linear&b.mode=bm25");
  await tab.waitForSelector("#compare-a .hit");
  await tab.waitForSelector("#compare-b .hit");
  assert.equal(new URL(tab.url()).searchParams.get("b.mode"), "bm25", "the address keeps both sides");
  const a = await tab.$$eval("#compare-a .hit", (items) => items.map((i) => i.dataset.id));
  const b = await tab.$$eval("#compare-b .hit", (items) => items.map((i) => ({ id: i.dataset.id, move: i.querySelector(".move").textContent })));
  assert.equal(a.length, 10);
  assert.equal(b.length, 10);
  for (const [rank, hit] of b.entries()) {
    const before = a.indexOf(hit.id);
    const expected = before < 0 ? `>${a.length}` : before > rank ? `▲${before - rank}` : before < rank ? `▼${rank - before}` : "=";
    assert.equal(hit.move, expected, hit.id);
  }
  await tab.screenshot({ path: `${artifacts}/ui-compare.png`, fullPage: true });
  assert.deepEqual(errors, []);
});

test("recommendations show the history items that drove them", async () => {
  const { tab, errors } = await page("/ui?tab=recommend&user=u001");
  await tab.waitForSelector("#recommendations .hit .history-item");
  const drivers = await tab.$$eval("#recommendations .hit", (items) => items.map((i) => [...i.querySelectorAll(".history-item")].map((h) => h.dataset.id)));
  assert.equal(drivers.length, 10);
  assert.ok(drivers.every((ids) => ids.length > 0 && ids.every((id) => id.length > 0)), JSON.stringify(drivers));
  // The history items are the user's own: check against the API.
  const history = new Set();
  const response = await fetch(`${base}/v1/recommend`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "u001", k: 10, explain: true }) });
  for (const hit of (await response.json()).hits) for (const tree of hit.explanations) for (const c of tree.children || []) {
    const match = /^history item (\S+)/.exec(c.label);
    if (match) history.add(match[1]);
    else assert.match(c.label, /^\d+ other history items/, "the one leaf that is no history item sums the rest");
  }
  assert.ok(drivers.flat().every((id) => history.has(id)));
  await tab.screenshot({ path: `${artifacts}/ui-recommend.png`, fullPage: true });
  assert.deepEqual(errors, []);
});

test("a catalog field's matched values show under the hit, marked as text", async () => {
  // The fixture index searches no catalog field: the answer is the server's, with a field's
  // highlights added as a generation built with --search-fields gives them.
  const { tab, errors } = await page("/ui");
  await tab.route("**/v1/search", async (route) => {
    const response = await route.fetch();
    const data = await response.json();
    data.hits[0].highlights = Object.assign(data.hits[0].highlights || {},
      { fields: { tags: ["<em>ultralight</em>", "&lt;b&gt; <em>tent</em>"] } });
    await route.fulfill({ response, json: data });
  });
  await tab.fill("#search-form input[name=query]", "ultralight tent");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForSelector("#results .hit:first-child .field-highlight");
  const line = await tab.$eval("#results .hit:first-child .field-highlight", (x) => ({
    field: x.dataset.field, text: x.textContent, marks: [...x.querySelectorAll("mark")].map((m) => m.textContent),
    bold: x.querySelectorAll("b").length,
  }));
  assert.deepEqual(line, { field: "tags", text: "tags: ultralight · <b> tent", marks: ["ultralight", "tent"], bold: 1 });
  assert.deepEqual(errors, []);
});

test("facets count the ranked list, a value filters on a click, and pages follow the total", async () => {
  const { tab, errors } = await page("/ui?tab=search&query=tent&k=5");
  await tab.waitForSelector('#facets .facet[data-field="category"] button');
  const facets = await tab.$$eval("#facets .facet", (panels) => Object.fromEntries(panels.map((p) => [p.dataset.field, {
    values: [...p.querySelectorAll("button")].map((b) => [b.dataset.value, Number(b.querySelector(".count").textContent)]),
    range: p.querySelector(".range")?.textContent,
  }])));
  // Every catalog field the generation has: text and list values counted, the price's range.
  assert.deepEqual(Object.keys(facets).sort(), ["brand", "category", "price", "tags"], JSON.stringify(facets));
  assert.match(facets.price.range, /^\d+(\.\d+)? – \d+(\.\d+)?$/);
  const tents = facets.category.values.find(([value]) => value === "tents");
  assert.ok(tents && tents[1] > 0, JSON.stringify(facets.category));
  const counts = facets.category.values.map(([, count]) => count);
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a), "most first");
  // The next page starts where the first ended, ranked on.
  const firstIds = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  await tab.click("#page-next");
  await tab.waitForFunction(() => document.querySelector("#results .hit .rank")?.textContent === "6");
  const secondIds = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  assert.equal(secondIds.length, 5);
  assert.ok(secondIds.every((id) => !firstIds.includes(id)), JSON.stringify([firstIds, secondIds]));
  assert.match(await tab.textContent("#search-meta"), /^6–10 of \d+ ranked hits/);
  assert.match(tab.url(), /offset=5/);
  assert.equal(await tab.isVisible("#page-prev"), true);
  // A click on a value filters on it, from the first page.
  await tab.click('#facets .facet[data-field="category"] button[data-value="tents"]');
  await tab.waitForFunction(() => document.querySelector("#config-main [name=filters]").value === '{"category":"tents"}'
    && document.querySelector("#results .hit .rank")?.textContent === "1");
  await tab.waitForFunction(() => /^1–5 of \d+/.test(document.querySelector("#search-meta").textContent));
  const filtered = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  assert.ok(filtered.length === 5 && filtered.every((id) => id.startsWith("TNT-")), JSON.stringify(filtered));
  const category = await tab.$$eval('#facets .facet[data-field="category"] button', (b) => b.map((x) => [x.dataset.value, x.className]));
  assert.deepEqual(category, [["tents", "active"]], "the filtered list holds tents only, the value marked");
  await tab.screenshot({ path: `${artifacts}/ui-facets.png`, fullPage: true });
  // A second value of the field is any of the two; clicking both again takes the filter out.
  await tab.click('#facets .facet[data-field="tags"] button[data-value="ultralight"]');
  await tab.waitForFunction(() => document.querySelector("#config-main [name=filters]").value === '{"category":"tents","tags":"ultralight"}');
  await tab.waitForSelector('#facets .facet[data-field="tags"] button.active[data-value="ultralight"]');
  await tab.click('#facets .facet[data-field="tags"] button[data-value="ultralight"]');
  await tab.waitForFunction(() => document.querySelector("#config-main [name=filters]").value === '{"category":"tents"}');
  await tab.waitForSelector('#facets .facet[data-field="category"] button.active[data-value="tents"]');
  await tab.click('#facets .facet[data-field="category"] button[data-value="tents"]');
  await tab.waitForFunction(() => document.querySelector("#config-main [name=filters]").value === "");
  await tab.waitForFunction(() => document.querySelectorAll('#facets .facet[data-field="category"] button').length > 1);
  // Filters typed in a box that holds no JSON: a click says so and keeps the text.
  await tab.fill("#config-main [name=filters]", '{"brand": "Kestrel"');
  await tab.click('#facets .facet[data-field="category"] button[data-value="tents"]');
  await tab.waitForFunction(() => /^filters: not JSON/.test(document.querySelector("#search-error").textContent));
  assert.equal(await tab.inputValue("#config-main [name=filters]"), '{"brand": "Kestrel"');
  // Bad JSON in the exclude box is not the filters': the click adds to what was typed, and the
  // search names the exclude box.
  await tab.fill("#config-main [name=filters]", '{"brand": "Kestrel"}');
  await tab.fill("#config-main [name=exclude]", "[oops");
  await tab.click('#facets .facet[data-field="category"] button[data-value="tents"]');
  await tab.waitForFunction(() => /^exclude: not JSON/.test(document.querySelector("#search-error").textContent));
  assert.equal(await tab.inputValue("#config-main [name=filters]"), '{"brand":"Kestrel","category":"tents"}');
  await tab.fill("#config-main [name=exclude]", "");
  // A link past the end: "previous" goes to the last page.
  await tab.goto(`${base}/ui?tab=search&query=tent&mode=bm25&k=5&offset=500`);
  await tab.waitForFunction(() => /^none of \d+/.test(document.querySelector("#search-meta").textContent));
  const total = Number(/of (\d+)/.exec(await tab.textContent("#search-meta"))[1]);
  await tab.click("#page-prev");
  const last = Math.floor((total - 1) / 5) * 5;
  await tab.waitForFunction((first) => document.querySelector("#results .hit .rank")?.textContent === String(first), last + 1);
  assert.deepEqual(errors, []);
});

test("the sort menu orders the list by a field, and travels in the address", async () => {
  const { tab, errors } = await page("/ui?tab=search&query=tent&k=10&sort=price:desc");
  await tab.waitForSelector("#results .hit");
  assert.equal(await tab.$eval("#search-form select[name=sort]", (s) => s.value), "price:desc");
  const shown = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  const expected = await tab.evaluate(async () => {
    const body = { query: "tent", k: 10, fusion: { method: "linear" }, sort: [{ field: "price", order: "desc" }] };
    const response = await fetch("/v1/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return (await response.json()).hits.map((h) => [h.id, h.fields.price]);
  });
  assert.deepEqual(shown, expected.map(([id]) => id));
  const prices = expected.map(([, price]) => price);
  assert.deepEqual(prices, [...prices].sort((a, b) => b - a), "dearest first");
  assert.match(tab.url(), /sort=price%3Adesc/);
  // Back to relevance: no sort in the request or the address.
  await tab.selectOption("#search-form select[name=sort]", "");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForFunction(() => !location.search.includes("sort="));
  assert.deepEqual(errors, []);
});

test("a server error is shown, not swallowed", async () => {
  const { tab } = await page("/ui?tab=recommend&user=nobody-at-all");
  await tab.waitForSelector("#recommend-error:not([hidden])");
  assert.match(await tab.textContent("#recommend-error"), /404 user_not_found/);
});

test("filters and exclusions typed as JSON reach the request, travel in the address, and their notes show", async () => {
  const filters = encodeURIComponent('{"category": "tents"}');
  const exclude = encodeURIComponent('{"tags": ["ultralight"]}');
  const { tab, errors } = await page(`/ui?tab=search&query=tent&k=20&filters=${filters}&exclude=${exclude}`);
  await tab.waitForSelector("#results .hit");
  const ids = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  const response = await fetch(`${base}/v1/search`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "tent", k: 20, fusion: { method: "linear" }, filters: { category: "tents" }, exclude: { tags: ["ultralight"] } }) });
  const expected = (await response.json()).hits.map((h) => h.id);
  assert.ok(expected.length > 0 && expected.every((id) => id.startsWith("TNT-")), JSON.stringify(expected));
  assert.deepEqual(ids, expected);
  // A value no item has: answered, with the note beside the hits.
  await tab.fill("#config-main input[name=filters]", '{"category": "Tents"}');
  await tab.click("#search-form button[type=submit]");
  await tab.waitForFunction(() => document.querySelector("#search-meta").textContent.includes("no item has"));
  assert.match(await tab.textContent("#search-meta"), /filters\.category: no item has "Tents"; close values: \["tents"\]/);
  assert.equal(new URL(tab.url()).searchParams.get("filters"), '{"category": "Tents"}');
  // A box that holds no JSON is named, and nothing is sent.
  await tab.fill("#config-main input[name=exclude]", "{tags: ultralight}");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForSelector("#search-error:not([hidden])");
  assert.match(await tab.textContent("#search-error"), /^exclude: not JSON/);
  // Recommendations take them too.
  const rec = await page(`/ui?tab=recommend&user=u001&exclude=${encodeURIComponent('{"category": "tents"}')}`);
  await rec.tab.waitForSelector("#recommendations .hit");
  const recommended = await rec.tab.$$eval("#recommendations .hit", (items) => items.map((i) => i.dataset.id));
  assert.ok(recommended.length > 0 && recommended.every((id) => !id.startsWith("TNT-")), JSON.stringify(recommended));
  assert.deepEqual(errors, []);
  assert.deepEqual(rec.errors, []);
});

test("as you type, the word being typed finds the words it begins; a blank query with filters browses", async () => {
  const { tab, errors } = await page("/ui");
  const sent = [];
  tab.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/search")) sent.push(JSON.parse(r.postData())); });
  await tab.selectOption("#config-main select[name=mode]", "bm25");
  await tab.check("#search-form input[name=typing]");
  await tab.type("#search-form input[name=query]", "kes", { delay: 30 });
  await tab.waitForFunction(() => [...document.querySelectorAll("#results .hit .title")].some((t) => /Kestrel/.test(t.textContent)));
  const titles = await tab.$$eval("#results .hit .title", (items) => items.map((t) => t.textContent));
  assert.match(titles[0], /Kestrel/, JSON.stringify(titles));
  assert.ok(sent.length >= 1 && sent.every((r) => r.bm25 && r.bm25.prefix === "last"), JSON.stringify(sent));
  assert.equal(sent.at(-1).query, "kes", "one search after the last keystroke");
  assert.equal(new URL(tab.url()).searchParams.get("typing"), "true");
  // A blank query with a filter: every tent, unranked.
  await tab.uncheck("#search-form input[name=typing]");
  await tab.fill("#search-form input[name=query]", "");
  await tab.selectOption("#config-main select[name=mode]", "hybrid");
  await tab.fill("#config-main input[name=filters]", '{"category": "tents"}');
  await tab.click("#search-form button[type=submit]");
  await tab.waitForFunction(() => document.querySelector("#search-meta").textContent.includes("browsed"));
  const ids = await tab.$$eval("#results .hit", (items) => items.map((i) => i.dataset.id));
  assert.ok(ids.length === 10 && ids.every((id) => id.startsWith("TNT-")), JSON.stringify(ids));
  assert.equal(sent.at(-1).query, undefined, "no query is sent");
  assert.deepEqual(errors, []);
});

test("a typo shows what the query was read as, and a click searches that", async () => {
  const { tab, errors } = await page("/ui");
  await tab.fill("#search-form input[name=query]", "kestrl bivy");
  await tab.click("#search-form button[type=submit]");
  await tab.waitForSelector("#did-you-mean:not([hidden])");
  assert.equal(await tab.textContent("#read-as"), "kestrel bivy");
  await tab.click("#read-as");
  await tab.waitForSelector("#did-you-mean", { state: "hidden" });
  assert.equal(await tab.inputValue("#search-form input[name=query]"), "kestrel bivy");
  const titles = await tab.$$eval("#results .hit .title", (items) => items.map((t) => t.textContent));
  assert.match(titles[0], /Kestrel/, JSON.stringify(titles));
  assert.deepEqual(errors, []);
});
